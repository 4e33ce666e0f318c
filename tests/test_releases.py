"""Release-specific planner semantics, each checked by hand and against vLLM's fixtures.

Figures for examples/mixed-kv-heads.yaml (24 full-attention layers, KV heads
8, 8, 4, 2, 1, 8 repeated, head 128, bf16, block 16): a layer's page is
16 x 2 x heads x 128 x 2 = 8192 x heads bytes.  The whole model sums 124 heads
(1,015,808 B per block id), one PP stage of 12 layers sums 62 (507,904 B).
vLLM's own planner gives the same numbers: tests/parity/fixtures/vllm-0.15.0.json
and vllm-0.19.1.json, scenario uniform-type-deci-heads-pp2-same-memory.
"""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.releases import KNOWN_RELEASES, resolve_release

GiB = 1 << 30
EXAMPLE = "examples/mixed-kv-heads.yaml"


def test_uniform_type_under_pp_in_015_divides_by_the_whole_model(kvplan):
    doc = kvplan("plan", EXAMPLE, "--vllm-version", "0.15", "--format", "json").json()
    assert doc["vllm_version"] == "0.15.1"
    assert [s["branch_taken"] for s in doc["stages"]] == ["uniform_type", "uniform_type"]
    assert [s["num_blocks_before_unify"] for s in doc["stages"]] == [10 * GiB // 1015808] * 2 == [10570] * 2
    assert doc["log_lines"][0] == "GPU KV cache size: 169,120 tokens"  # 10570 x 16
    # Each stage's own tensors hold 12 layers (507,904 B per block): half the memory idles.
    assert [s["unused_bytes"] for s in doc["stages"]] == [10 * GiB - 10570 * 507904] * 2


def test_uniform_type_under_pp_from_017_divides_by_the_stage(kvplan):
    doc = kvplan("plan", EXAMPLE, "--vllm-version", "0.19", "--format", "json").json()
    assert [s["num_blocks_before_unify"] for s in doc["stages"]] == [10 * GiB // 507904] * 2 == [21140] * 2
    assert doc["log_lines"] == [
        "GPU KV cache size: 338,240 tokens",
        "Maximum concurrency for 131,072 tokens per request: 2.58x",
    ]


def test_explain_answers_the_three_questions(kvplan):
    text = kvplan("plan", EXAMPLE, "--vllm-version", "0.15", "--explain", "--format", "json").json()[
        "explain"
    ]
    assert "PER LAYER" in text
    assert "already counts every layer" in text
    assert "Pipeline parallelism" in text and "minimum, 10,570" in text
    assert "WHOLE model's spec" in text


def test_null_block_and_usable_blocks(kvplan):
    doc = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--format", "json").json()
    assert doc["usable_blocks"] == doc["num_blocks"] - 1 == 10239


@pytest.mark.parametrize(("version", "fits"), [("0.19.1", True), ("0.20.1", False)])
def test_override_enters_the_check_from_0201(kvplan, version, fits):
    # 100 blocks x 2 MiB = 200 MiB cannot hold a 131072-token request (16 GiB);
    # from 0.20.1 the check sees the override's memory, before it sees the 20 GiB.
    doc = kvplan(
        "plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--num-gpu-blocks-override", "100",
        "--vllm-version", version, "--format", "json",
    ).json()  # fmt: skip
    assert doc["num_blocks"] == 100
    assert doc["max_model_len"]["fits"] is fits


def test_auto_fit_reserves_the_null_block_from_029(kvplan):
    # 10 GiB minus one 2 MiB block = 5119 blocks of 16 tokens = 81904 tokens (0.29+);
    # 0.28 does not reserve it: 5120 x 16 = 81920.
    new = kvplan(
        "plan", "llama-3.1-8b", "--kv-cache-memory", "10GiB", "--max-model-len", "auto", "--format", "json"
    )
    old = kvplan(
        "plan", "llama-3.1-8b", "--kv-cache-memory", "10GiB", "--max-model-len", "-1",
        "--vllm-version", "0.28", "--format", "json",
    )  # fmt: skip
    assert new.json()["max_model_len"]["value"] == 81904
    assert old.json()["max_model_len"]["value"] == 81920


def test_too_long_gives_vllms_error_and_estimate(kvplan):
    # 5 GiB holds 2560 blocks of 16 tokens = 40960 tokens; 131072 needs 16 GiB.
    doc = kvplan(
        "plan", "llama-3.1-8b", "--kv-cache-memory", "5GiB", "--vllm-version", "0.19", "--format", "json"
    )
    assert doc.code == 0  # plan exits 0; `check` is the gate
    mml = doc.json()["max_model_len"]
    assert not mml["fits"] and mml["estimated_max"] == 40960
    assert mml["error"].startswith(
        "To serve at least one request with the models's max seq len (131072), (16.0 GiB"
    )


def test_capacity_log_style_per_release(kvplan):
    two = kvplan(
        "plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--vllm-version", "0.27", "--format", "json"
    )
    one = kvplan(
        "plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--vllm-version", "0.28", "--format", "json"
    )
    assert len(two.json()["log_lines"]) == 2 and len(one.json()["log_lines"]) == 1


def test_every_known_release_plans_llama():
    for version in KNOWN_RELEASES:
        r = api.plan("llama-3.1-8b", **{"kv_cache_memory": "20GiB", "vllm_version": version})
        assert r.num_blocks == 10240, version  # floor(m/(n p)) == floor(floor(m/p)/n)


def test_default_utilization_moves_at_020():
    assert resolve_release("0.19").behaviour.gpu_memory_utilization == 0.9
    assert resolve_release("0.20").behaviour.gpu_memory_utilization == 0.92


def test_explain_says_why_the_branches_differ_on_a_hybrid(kvplan):
    # Gemma-3-27B at TP 8: 7 groups of up to 10 layers; one block id costs 10 pages (163,840 B),
    # not a page in each of the 62 layers (1,015,808 B).
    text = kvplan(
        "plan", "gemma-3-27b", "--tp", "8", "--kv-cache-memory", "40GiB", "--vllm-version", "0.19",
        "--explain", "--format", "json",
    ).json()["explain"]  # fmt: skip
    assert "They differ (42,281 vs 262,144)" in text
    assert "7 KV cache groups of up to 10 layers" in text
    assert "vLLM 0.19.1 takes: shared_pool -> 262,144 blocks" in text
