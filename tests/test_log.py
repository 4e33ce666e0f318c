"""``kvplan log``: real public vLLM startup logs re-planned (sources in fixtures/logs/index.yaml).

Each printed "Available KV cache memory: X GiB" stands for any byte count in
[(X - 0.005) GiB, (X + 0.005) GiB); kvplan plans at both ends, and the printed
"GPU KV cache size" must lie between the two token counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvplan.releases import release_for_log
from kvplan.workflows import logs as logparse

LOGS = Path(__file__).parent / "fixtures" / "logs"

# (log, extra arguments, tokens printed in the log's "GPU KV cache size" line,
#  the hand window of index.yaml's notes for the two ends of the Available rounding)
REPRODUCED = [
    pytest.param(
        # github.com/vllm-project/vllm/pull/20665. DeepSeek-V2-Lite, 27 MLA layers split [14, 13]
        # over PP=2, 576 x 2 B = 1152 B per token per layer, TP does not shard MLA.
        # July 2025 build (older than 0.10.0 -> 0.10.0 semantics).  The log ran on L4s: no
        # FlashMLA there, so `--gpu L4` keeps MLA blocks at 16 (807,792 is not a multiple of 64).
        "deepseek-v2-lite-tp2-pp2-l4.log",
        ["--tp", "2", "--pp", "2", "--vllm-version", "0.10.0", "--gpu", "L4"],
        807_792,
        # stage 0: floor(12.125 GiB / (14 x 1152 x 16)) x 16 .. floor(12.135 GiB / ...) x 16
        (807_232, 807_888),
        id="deepseek-v2-lite",
    ),
    pytest.param(
        # github.com/LMCache/LMCache/issues/1739. Qwen3-14B: 40 layers x 2 x 8 x 128 x 2 B
        # = 163,840 B per token; kv_cache_utils.py:864 -> the 0.10.2 - 0.11.0 era.
        "qwen3-14b-lmcache.log",
        ["--model", str(LOGS / "qwen3-14b.config.json"), "--vllm-version", "0.11.0"],
        42_656,
        # floor(6.505 GiB / (163,840 x 16)) x 16 .. floor(6.515 GiB / ...) x 16
        (42_624, 42_688),
        id="qwen3-14b",
    ),
    pytest.param(
        # github.com/vllm-project/vllm/issues/25350. fp8 cache, model not named: 49,152 B per
        # token = 48 layers x 2 x 4 KV heads x 128 x 1 B, the shape of Qwen3-30B-A3B.  vLLM took
        # max_model_len 100,000, so the model's own length is at least that: the stand-in is the
        # qwen3-30b-a3b preset with max_position_embeddings 262,144 (the 2507 checkpoints' value),
        # as the preset's 40,960 would make vLLM (and kvplan) refuse 100,000.
        "fp8-kv-cache-100k.log",
        [
            "--model",
            str(LOGS / "qwen3-30b-a3b-262k.config.json"),
            "--kv-cache-dtype",
            "fp8",
            "--vllm-version",
            "0.11.0",
        ],
        230_528,
        # floor(10.545 GiB / (49,152 x 16)) x 16 .. floor(10.555 GiB / ...) x 16
        (230_352, 230_576),
        id="fp8-qwen3-30b-a3b-shape",
    ),
    pytest.param(
        # github.com/vllm-project/vllm-omni/pull/1160. Stage 0, model not named: 36,864 B per
        # token = 36 layers x 2 x 2 KV heads x 128 x 2 B (the Qwen2.5-3B text shape).
        # Feb 2026 build; a single-group dense model sizes the same in every release kvplan knows.
        "omni-stage0-prefixed.log",
        ["--model", str(LOGS / "qwen2.5-3b.config.json"), "--vllm-version", "0.15"],
        2_925_232,
        # floor(100.425 GiB / (36,864 x 16)) x 16 .. floor(100.435 GiB / ...) x 16
        (2_925_088, 2_925_376),
        id="omni-stage0",
    ),
    pytest.param(
        # github.com/ilseokoh/vllm-gce README (test.py output). vLLM 0.15.1, Llama-3.1-8B-Instruct from a
        # local path (so --model is needed), one A100 40GB, enforce_eager: 32 x 2 x 8 x 128 x 2 B
        # = 131,072 B per token.
        "llama-3.1-8b-v0.15.1-a100-40gb.log",
        ["--model", "llama-3.1-8b"],
        157_936,
        # floor(19.275 GiB / (131,072 x 16)) x 16 .. floor(19.285 GiB / ...) x 16
        (157_888, 157_968),
        id="llama-3.1-8b-v0.15.1",
    ),
    pytest.param(
        # github.com/dariustanrd/tokenkaki, blogposts/content/1_vllm (vllm serve log). vLLM 0.19.1,
        # Qwen/Qwen3-8B named by the log, one A100-SXM4-40GB: 36 x 2 x 8 x 128 x 2 B = 147,456 B per
        # token. The profiling pass's "num_gpu_blocks_override=512" line must not count as an override.
        "qwen3-8b-v0.19.1-a100-40gb.log",
        [],
        140_960,
        # floor(19.355 GiB / (147,456 x 16)) x 16 .. floor(19.365 GiB / ...) x 16
        (140_928, 141_008),
        id="qwen3-8b-v0.19.1",
    ),
]


@pytest.mark.parametrize(("log", "args", "printed", "window"), REPRODUCED)
def test_reproduces_the_printed_kv_cache_size(kvplan, log, args, printed, window):
    out = kvplan("log", LOGS / log, *args, "--format", "json")
    assert out.code == 0, out.stdout + out.stderr
    doc = out.json()
    assert doc["log"]["kv_cache_tokens"][0] == printed
    low, high = doc["kvplan"]["kv_cache_tokens"]
    assert (low, high) == window
    assert low <= printed <= high
    assert doc["differs"] is False


def test_concurrency_lines_agree_too(kvplan):
    # Qwen3-14B: 2664..2668 blocks / (32768 / 16 = 2048) = 1.30x, as printed.
    doc = kvplan(
        "log", LOGS / "qwen3-14b-lmcache.log", "--model", LOGS / "qwen3-14b.config.json", "--format", "json"
    ).json()
    assert doc["log"]["max_concurrency"] == [{"tokens_per_request": 32768, "x": 1.30}]
    low, high = doc["kvplan"]["max_concurrency"]
    assert round(low, 2) <= 1.30 <= round(high, 2)
    assert doc["kvplan"]["num_blocks"] == [2664, 2668]


def test_a_log_that_disagrees_is_flagged(kvplan):
    # github.com/vllm-project/vllm/issues/21348: Qwen3-235B-A22B at TP4 holds 94 x 2 x 1 x 128 x 2
    # = 48,128 B per token per rank; 8.11 GiB gives 180,816..181,040 tokens, the log prints
    # 178,880 (its token count comes from a worker whose Available line was not posted).
    out = kvplan("log", LOGS / "qwen3-235b-a22b-fp8-tp4.log", "--model", "qwen3-235b-a22b", "--tp", "4")
    assert out.code == 1
    doc = kvplan(
        "log",
        LOGS / "qwen3-235b-a22b-fp8-tp4.log",
        "--model",
        "qwen3-235b-a22b",
        "--tp",
        "4",
        "--format",
        "json",
    ).json()
    assert doc["differs"] is True
    assert doc["kvplan"]["kv_cache_tokens"] == [180_816, 181_040]
    row = next(f for f in doc["fields"] if f["name"].startswith("GPU KV cache size"))
    assert row == {**row, "log": "178,880", "status": "differs"}


def test_side_by_side_table_and_markdown(kvplan):
    args = ("log", LOGS / "deepseek-v2-lite-tp2-pp2-l4.log", "--tp", "2", "--pp", "2", "--block-size", "16")
    table = kvplan(*args, "--vllm-version", "0.10.0")
    assert table.code == 0
    assert "807,792" in table.stdout and "agrees" in table.stdout
    md = kvplan(*args, "--format", "markdown").stdout
    # No release printed and none given: planned with the newest, and said so.
    assert "does not print the vLLM release" in md
    assert "| Available KV cache memory (stage 1) | 11.33 GiB |" in md


def test_model_named_by_the_log_maps_to_a_preset():
    facts = logparse.parse((LOGS / "deepseek-v2-lite-tp2-pp2-l4.log").read_text())
    assert facts.model == "deepseek-ai/DeepSeek-V2-Lite"
    assert logparse.find_model_for(facts.model).label == "deepseek-v2-lite"
    # Four workers, ranks 0/1 at 12.13 GiB and 2/3 at 11.33 GiB: rank // tp is the PP stage.
    stages = logparse.stage_memory(facts, tp=2, pp=2)
    assert stages is not None
    assert [s.gib_text for s in stages] == ["12.13", "11.33"]
    assert facts.kv_cache_tokens == (807_792, 807_792)
    assert facts.max_model_len == 1024


def test_missing_or_unknown_model_is_bad_input(kvplan):
    out = kvplan("log", LOGS / "fp8-kv-cache-100k.log")
    assert out.code == 2 and "does not name the model" in out.stderr and "--model" in out.stderr
    out = kvplan("log", LOGS / "qwen36-35b-a3b-nvfp4-fp8kv-v0.24.log")
    assert out.code == 2 and "qwen3.6-35b-a3b-nvfp4" in out.stderr
    out = kvplan("log", LOGS / "no-such.log")
    assert out.code == 2 and "no such file" in out.stderr


def test_ansi_ray_and_worker_prefixes():
    real = (LOGS / "qwen3-14b-lmcache.log").read_text().splitlines()
    plain = logparse.parse("\n".join(real))
    # The same lines as a coloured terminal and a Ray worker would print them.
    coloured = [
        "\x1b[36m(RayWorkerWrapper pid=4242)\x1b[0m " + line.replace("INFO", "\x1b[32mINFO\x1b[0m")
        for line in real
    ]
    assert logparse.parse("\n".join(coloured)) == plain
    worker = [line.replace("(EngineCore_DP0 pid=1133552)", "(VllmWorker TP0 pid=77)") for line in real]
    facts = logparse.parse("\n".join(worker))
    assert facts.kv_cache_tokens == (42_656,) and facts.available[0].tp_rank == 0
    assert plain.available[0].gib_text == "6.51" and plain.concurrency == ((32768, 1.30),)


def test_one_line_capacity_report_and_version():
    text = (
        "(APIServer pid=1) INFO 01-02 03:04:05 [core.py:93] Initializing a V1 LLM engine (v0.29.0) with config: "
        "model='Qwen/Qwen3-8B', speculative_config=None, dtype=torch.bfloat16, max_seq_len=40960, "
        "tensor_parallel_size=2, pipeline_parallel_size=1, kv_cache_dtype=fp8\n"
        "(EngineCore_DP0 pid=9) INFO 01-02 03:05:00 [kv_cache_utils.py:1300] GPU KV cache size: 1,234,560 tokens, "
        "Maximum concurrency for 40,960 tokens per request: 30.14x\n"
    )
    facts = logparse.parse(text)
    assert facts.vllm_version == "0.29.0" and facts.model == "Qwen/Qwen3-8B"
    assert (facts.tp, facts.pp, facts.max_model_len, facts.kv_cache_dtype, facts.dtype) == (
        2,
        1,
        40960,
        "fp8",
        "bfloat16",
    )
    assert facts.kv_cache_tokens == (1_234_560,) and facts.concurrency == ((40960, 30.14),)


def test_version_mapping():
    assert release_for_log("0.24.0") == ("0.24.0", None)
    version, note = release_for_log("0.9.2")
    assert version == "0.10.0" and note is not None and "0.10.0 semantics" in note
    version, note = release_for_log("0.11.1rc2.dev5+g1234")
    assert version == "0.11.1" and note is not None
    version, note = release_for_log(None)
    assert version is None and note is not None and "--vllm-version" in note


def test_available_window_in_bytes():
    # 6.51 GiB printed: [6.505, 6.515) GiB = [6,984,690,565.12, 6,995,427,983.36) bytes,
    # so whole bytes 6,984,690,566 .. 6,995,427,983.
    low, high = logparse.Available("6.51").window()
    assert low == 6_984_690_566 and high == 6_995_427_983
    assert low / (1 << 30) >= 6.505 and (high + 1) / (1 << 30) >= 6.515 > high / (1 << 30)


def test_stdin():
    import json

    from typer.testing import CliRunner

    from kvplan.cli import app

    text = (LOGS / "qwen3-14b-lmcache.log").read_text()
    args = ["log", "-", "--model", str(LOGS / "qwen3-14b.config.json"), "--format", "json"]
    result = CliRunner().invoke(app, args, input=text)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["log"]["kv_cache_tokens"] == [42_656]


def test_a_failed_start_is_a_reproduced_refusal(kvplan):
    # github.com/guardkit/guardkit docs/reviews/graphiti-qwen3/run-6.md: vLLM 0.13.0 on a GB10 at
    # gpu_memory_utilization 0.15 logs "Available KV cache memory: -1.30 GiB", then "EngineCore failed
    # to start" with check_enough_kv_cache_memory's ValueError. kvplan plans with the -1.30 GiB it
    # logged, and vLLM 0.13's planner refuses with the same words.
    args = [
        "log",
        LOGS / "qwen2.5-14b-fp8-gb10-v0.13-fail.log",
        "--model",
        LOGS / "qwen2.5-14b-fp8-dynamic.config.json",
        "--gpu",
        "GB10",
    ]
    doc = kvplan(*args, "--format", "json").json()
    assert doc["log"]["started"] is False
    assert doc["log"]["failure"].startswith("No available memory for the cache blocks.")
    assert doc["refusal_reproduced"] is True
    assert doc["verdict"].startswith("vLLM refused to start (No available memory for the cache blocks.")
    assert doc["verdict"].endswith("kvplan reproduces the refusal for the same reason")
    names = [f["name"] for f in doc["fields"]]
    assert "vLLM start-up" in names and not any(n.startswith("GPU KV cache size") for n in names)
    # The log's inputs: utilization 0.15 and kv fp8 from the non-default args, max_num_batched_tokens
    # 2048 from the chunked-prefill line, the weights from "Model loading took 15.2227 GiB".
    assert (doc["log"]["gpu_memory_utilization"], doc["log"]["max_num_batched_tokens"]) == (0.15, 2048)
    weights = next(f for f in doc["fields"] if f["name"].startswith("weights"))
    assert weights["log"] == "15.22 GiB" and weights["status"] == "estimate"
    table = kvplan(*args)
    assert table.code == 0
    assert "kvplan reproduces the refusal" in table.stdout
    assert "agrees" not in table.stdout and "GPU KV cache size" not in table.stdout


def test_the_gpu_comes_from_the_log(kvplan):
    # The DeepSeek-V2-Lite log names its GPU in a fused_moe config path (device_name=NVIDIA_L4): an L4
    # runs Triton MLA with 16-token blocks, which the printed 807,792 tokens need (not FlashMLA's 64).
    out = kvplan(
        "log",
        LOGS / "deepseek-v2-lite-tp2-pp2-l4.log",
        "--tp",
        "2",
        "--pp",
        "2",
        "--vllm-version",
        "0.10.0",
        "--format",
        "json",
    )
    doc = out.json()
    assert doc["log"]["gpu_name"] == "NVIDIA L4"
    assert doc["differs"] is False and doc["kvplan"]["kv_cache_tokens"] == [807_232, 807_888]
    assert any(n == "GPU from the log: NVIDIA L4 (preset L4)" for n in doc["notes"])


def test_tp_and_pp_from_worker_prefixes():
    text = "\n".join(
        f"(Worker_PP{pp}_TP{tp} pid={10 + 2 * pp + tp}) INFO 01-01 00:00:00 [gpu_worker.py:375] "
        f"Available KV cache memory: 10.0{pp} GiB"
        for pp in range(2)
        for tp in range(4)
    )
    facts = logparse.parse(text)
    assert (facts.tp_from_workers, facts.pp_from_workers) == (4, 2)
    # gpu_worker.py:375 is vLLM 0.13.0's "Available KV cache memory" logger line.
    assert facts.version_from_lines == "0.13.0"


def test_release_from_source_line_numbers():
    # No banner: gpu_worker.py:298 is 0.10.2's and 0.11.0's line; kv_cache_utils.py:864 only 0.10.2's.
    facts = logparse.parse((LOGS / "qwen3-14b-lmcache.log").read_text())
    assert facts.vllm_version is None and facts.version_from_lines == "0.10.2"
    assert logparse._release_from_lines(298, None) == "0.10.2/0.11.0"
