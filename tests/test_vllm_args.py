"""A pasted ``vllm serve`` line or ``LLM(...)`` keywords: every modelled flag maps to its option,
every other one is named as ignored.

Flag spellings and value formats are vLLM 0.33.0's (``vllm/engine/arg_utils.py``;
``human_readable_int`` in ``vllm/utils/argparse_utils.py``: ``1k`` = 1,000,
``1K`` = 1,024).
"""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.errors import InputError
from kvplan.inputs import vllm_args
from kvplan.inputs.serving import human_int, validate

SERVE = (
    "VLLM_PP_LAYER_PARTITION=15,17 CUDA_VISIBLE_DEVICES=0,1 vllm serve meta-llama/Llama-3.1-8B-Instruct "
    "--tensor-parallel-size 4 -pp 2 --kv-cache-memory-bytes 20G --max-model-len=32k --port 8000 "
    "--trust-remote-code --no-enable-prefix-caching --served-model-name llama --max_num_seqs 64"
)


def test_every_modelled_flag_maps_and_every_other_is_named():
    args = vllm_args.parse(SERVE)
    assert args.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert args.serving == {
        "pp_layer_partition": "15,17",
        "tp": "4",
        "pp": "2",
        "kv_cache_memory_bytes": "20G",
        "max_model_len": "32k",
        "enable_prefix_caching": False,
        "max_num_seqs": "64",  # --max_num_seqs: vLLM's parser takes underscores too
    }
    assert args.ignored == (
        "CUDA_VISIBLE_DEVICES=0,1",
        "--port 8000",
        "--trust-remote-code",
        "--served-model-name llama",
    )


def test_the_values_are_vllms():
    values = validate(vllm_args.parse(SERVE).serving, "--vllm-args")
    assert values["kv_cache_memory"] == (20 << 30,)  # 20G = 20 x 2**30
    assert values["max_model_len"] == 32000  # 32k = 32 x 1000
    assert values["pp_layer_partition"] == (15, 17)
    assert human_int("32K", "x", None, low=1, high=1 << 40) == 32768
    assert human_int("25.6k", "x", None, low=1, high=1 << 40) == 25600
    with pytest.raises(InputError, match="decimals are not allowed with binary suffixes"):
        human_int("1.5K", "x", None, low=1, high=1 << 40)


def test_a_pasted_line_plans_as_vllm_would():
    plan = api.plan(None, vllm_args=SERVE)
    # The hub id is not cached: the preset holding its config.json plans it.
    assert plan.model.label == "llama-3.1-8b"
    assert (plan.serving.tp, plan.serving.pp, plan.serving.pp_layer_partition) == (4, 2, (15, 17))
    # Stage 1 holds 17 layers: 20 GiB // (17 x 16 x 2 x 2 x 128 x 2 B) = 77,101 blocks;
    # stage 0 (15 layers) has more, and the minimum is every worker's.
    assert plan.num_blocks == (20 << 30) // (17 * 16 * 2 * 2 * 128 * 2)
    assert any("ignored (kvplan does not model them): CUDA_VISIBLE_DEVICES=0,1, --port 8000" in n
               for n in plan.all_notes)  # fmt: skip


def test_llm_keywords():
    args = vllm_args.parse(
        'LLM(model="Qwen/Qwen3-8B", tensor_parallel_size=2, kv_cache_memory_bytes=16 * 1024**3, '
        "enable_prefix_caching=False, seed=0, dtype=dtype)"
    )
    assert args.model == "Qwen/Qwen3-8B"
    assert args.serving == {
        "tensor_parallel_size": 2,
        "kv_cache_memory_bytes": 16 << 30,
        "enable_prefix_caching": False,
    }
    assert args.ignored == ("seed=0", "dtype=dtype")
    # A bare keyword list is read the same way.
    assert vllm_args.parse("tensor_parallel_size=2, max_model_len=8192").serving == {
        "tensor_parallel_size": 2,
        "max_model_len": 8192,
    }


def test_flags_and_pasted_values_must_agree(kvplan):
    out = kvplan("plan", "llama-3.1-8b", "--tp", "2", "--vllm-args", "vllm serve x --tensor-parallel-size 4")
    assert out.code == 2 and "field 'tp': --vllm-args gives 4 but the flag gives 2" in out.stderr
    # The same value twice is no conflict.
    out = kvplan(
        "plan",
        "llama-3.1-8b",
        "--tp",
        "2",
        "--kv-cache-memory",
        "20GiB",
        "--vllm-args",
        "vllm serve x -tp 2",
        "--format",
        "json",
    )
    assert out.code == 0 and out.json()["serving"]["tp"] == 2
    with pytest.raises(InputError, match="gives --tensor-parallel-size 2 and -tp 4"):
        vllm_args.parse("vllm serve m --tensor-parallel-size 2 -tp 4")


def test_plan_after_double_dash(kvplan):
    out = kvplan(
        "plan",
        "--format",
        "json",
        "--",
        "vllm",
        "serve",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--tensor-parallel-size",
        "2",
        "--kv-cache-memory-bytes",
        "20G",
        "--enable-chunked-prefill",
    )
    assert out.code == 0, out.stderr
    doc = out.json()
    # 20 GiB / (32 x 16 x 2 x 4 x 128 x 2 B) = 20,480 blocks at TP 2.
    assert doc["num_blocks"] == 20480 and doc["serving"]["tp"] == 2
    assert any("ignored" in n and "--enable-chunked-prefill" in n for n in doc["notes"])
    out = kvplan("plan", "llama-3.1-8b", "oops", "--kv-cache-memory", "20GiB")
    assert out.code == 2 and "unexpected extra arguments: oops" in out.stderr


def test_bad_pasted_lines_exit_2(kvplan):
    for text, needle in (
        ("", "is empty"),
        ("vllm serve m --tensor-parallel-size", "--tensor-parallel-size needs a value"),
        ("vllm serve m --enforce-eager=yes", "is a switch and takes no value"),
        ("vllm serve 'unclosed", "cannot split the command line"),
        ("LLM(model=1)", "the model must be a string"),
        ("vllm serve llama-3.1-8b --tensor-parallel-size two", "must be a whole number"),
    ):
        out = kvplan("plan", "--vllm-args", text)
        assert out.code == 2 and needle in out.stderr, (text, out.stderr)
        assert "Traceback" not in out.stderr


def test_yaml_serving_takes_vllms_names(tmp_path):
    # serving: keys may be spelled as vLLM's engine arguments (tensor_parallel_size = tp).
    path = tmp_path / "m.yaml"
    path.write_text(
        "architectures: [LlamaForCausalLM]\nhidden_size: 4096\nnum_attention_heads: 32\n"
        "num_key_value_heads: 8\nnum_hidden_layers: 32\nmax_position_embeddings: 8192\n"
        "serving:\n  tensor_parallel_size: 2\n  kv_cache_memory_bytes: 20G\n"
    )
    plan = api.plan(str(path))
    # 20 GiB / (32 x 16 x 2 x 4 x 128 x 2 B) = 20,480 blocks at TP 2.
    assert plan.serving.tp == 2 and plan.num_blocks == 20480
    with pytest.raises(InputError, match="conflicts with 'tp'"):
        validate({"tp": 2, "tensor_parallel_size": 4}, "m.yaml")


SAMPLE = {
    "tp": "2", "pp": "2", "dcp": "2", "dp": "2", "gpu_memory_utilization": "0.85",
    "kv_cache_memory_bytes": "8G", "cpu_offload_gb": "4", "max_model_len": "8k", "block_size": "32",
    "kv_cache_dtype": "fp8", "num_gpu_blocks_override": "1000", "mamba_cache_mode": "align",
    "mamba_block_size": "256", "mamba_cache_dtype": "float32", "mamba_ssm_cache_dtype": "float32",
    "max_num_batched_tokens": "8K", "max_num_seqs": "64", "quantization": "fp8", "dtype": "half",
    "performance_mode": "throughput",
}  # fmt: skip


@pytest.mark.parametrize("flag", sorted(vllm_args.VLLM_FLAGS))
def test_every_mapped_flag_reaches_its_option(flag):
    # Each flag is one of vLLM 0.33.0's (vllm/engine/arg_utils.py) and lands on a serving
    # option that validates: a switch as itself and as --no-..., a value with a sample.
    field, kind = vllm_args.VLLM_FLAGS[flag]
    if kind == "bool":
        assert validate(vllm_args.parse(f"vllm serve m {flag}").serving, "x")
        if flag.startswith("--"):
            off = vllm_args.parse(f"vllm serve m --no-{flag[2:]}").serving
            assert list(off.values()) == [False]
        return
    parsed = vllm_args.parse(f"vllm serve m {flag} {SAMPLE[field]}")
    assert parsed.ignored == () and validate(parsed.serving, "x")
