"""Full-attention architectures (vLLM's dense model files and its Transformers
backend) against vLLM's own model code.

Every case of tests/oracle/cases/full.json was built by vLLM itself on the
meta device (tests/oracle/fixtures/full/vllm-<version>.json: each layer's
``get_kv_cache_spec`` on TP rank 0 of every PP stage, and the planner's groups
and block count for 20 GiB per worker).  kvplan must give the same layer
names and, per layer, the same spec kind, block size, page size, KV heads,
head sizes, dtype and window; where vLLM refused the case (a config or build
error), kvplan must refuse it too.  Configs: tests/oracle/configs/<name>/
(source.txt says where each comes from).  A case may name releases whose own
environment cannot read its config (``skip_releases``, with the reason: the
transformers version installed with that release lacks the config class, or
a gap of the meta-device harness); those pairs are not compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kvplan import api
from kvplan.errors import KvplanError
from kvplan.inputs.models import ModelInput
from kvplan.inputs.serving import merge
from kvplan.model.describe import describe
from kvplan.releases import resolve_release
from kvplan.vllm import specs as kv
from kvplan.vllm.layout import build_layout
from tools.oracle_oldest import extra_runs

ORACLE = Path(__file__).parent / "oracle"
FAMILY = "full"
RELEASES = ("0.33.0", "0.32.0", "0.28.0", "0.23.0", "0.19.1", "0.15.1", "0.11.0", "0.10.2")
CASES = json.loads((ORACLE / "cases" / f"{FAMILY}.json").read_text())["cases"]
# (release, case id) pairs of the oldest-release runs that are not compared, with why
# (as ``skip_releases`` for the releases above)
OLDEST_SKIPS: dict[tuple[str, str], str] = {}
# (release, case) pairs; a case names the releases whose own environment cannot read its
# config (``skip_releases``: the reason), which are left out rather than compared
RUNS = [
    pytest.param(version, case, id=f"{case['id']}-{version}")
    for version in RELEASES
    for case in CASES
    if version not in case.get("skip_releases", {})
] + [
    # and on the oldest release serving the case's architecture (OLDEST_SKIPS: why not)
    pytest.param(version, case, id=f"{case['id']}-{version}")
    for version, case in extra_runs(FAMILY, RELEASES)
    if (version, case["id"]) not in OLDEST_SKIPS
]

# vLLM's spec class -> kvplan's kind
KINDS = {"FullAttentionSpec": "full", "SlidingWindowSpec": "sliding_window", "MLAAttentionSpec": "mla"}
# engine arguments the cases use -> kvplan's option (None: no bearing on the KV cache)
ARGS = {
    "max_model_len": "max_model_len",
    "kv_cache_dtype": "kv_cache_dtype",
    "trust_remote_code": None,
    "attention_backend": None,
}


def _fixture(version: str) -> dict[str, Any]:
    path = ORACLE / "fixtures" / FAMILY / f"vllm-{version}.json"
    if not path.exists():
        pytest.fail(f"missing oracle fixture {path}")
    return json.loads(path.read_text())


_FIXTURES: dict[str, dict[str, Any]] = {}


def _result(version: str, case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if version not in _FIXTURES:
        _FIXTURES[version] = _fixture(version)
    fx = _FIXTURES[version]
    result = fx["results"].get(case["id"])
    if result is None:
        pytest.fail(f"case {case['id']} is not in the vLLM {version} fixture")
    return fx, result


def _config(case: dict[str, Any]) -> dict[str, Any]:
    return json.loads((ORACLE / "configs" / case["config"] / "config.json").read_text())


def _options(case: dict[str, Any], result: dict[str, Any], version: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "tp": case["tp"],
        "pp": case["pp"],
        "kv_cache_memory": str(case["memory_per_worker_bytes"]),
        "vllm_version": version,
    }
    resolved = result.get("config", {})
    for key in ("max_num_batched_tokens", "max_num_seqs"):
        if resolved.get(f"scheduler_config.{key}"):
            options[key] = resolved[f"scheduler_config.{key}"]
    for arg, value in case["args"].items():
        if arg not in ARGS:
            raise AssertionError(f"case {case['id']}: engine argument {arg} has no kvplan option")
        if ARGS[arg]:
            options[ARGS[arg]] = value
    return options


def _fp8(dtype: str, quant_mode: str = "NONE") -> str:
    """One spelling for an 8-bit float cache: vLLM records the storage dtype (uint8,
    with the quantization mode from 0.33), kvplan the --kv-cache-dtype value."""
    if dtype.startswith(("fp8", "float8")) or dtype == "uint8" or quant_mode.startswith("FP8"):
        return "fp8"
    return dtype


def _vllm_spec(spec: dict[str, Any]) -> dict[str, Any]:
    out = {
        "kind": KINDS.get(spec["class"], spec["class"]),
        "block_size": spec["block_size"],
        "page_size_bytes": spec["page_size_bytes"],
        "num_kv_heads": spec["num_kv_heads"],
        "head_size": spec["head_size"],
        "head_size_v": spec.get("head_size_v") or spec["head_size"],
        "dtype": _fp8(spec["dtype"], spec.get("kv_quant_mode") or "NONE"),
    }
    if spec.get("sliding_window") is not None:
        out["sliding_window"] = spec["sliding_window"]
    return out


def _kvplan_spec(spec: kv.KVCacheSpec) -> dict[str, Any]:
    assert isinstance(spec, kv.AttentionSpec), spec
    out = {
        "kind": spec.kind,
        "block_size": spec.block_size,
        "page_size_bytes": spec.page_size_bytes,
        "num_kv_heads": spec.num_kv_heads,
        "head_size": spec.head_size,
        "head_size_v": getattr(spec, "head_size_v", None) or spec.head_size,
        "dtype": _fp8(spec.dtype),
    }
    if getattr(spec, "sliding_window", None) is not None:
        out["sliding_window"] = spec.sliding_window
    return out


def _vllm_stages(fx: dict[str, Any], result: dict[str, Any]) -> list[dict[str, dict[str, Any]]]:
    stages = sorted((s for s in result["stages"] if s["tp_rank"] == 0), key=lambda s: s["pp_rank"])
    return [
        {
            name: _vllm_spec(fx["specs"][key])
            for name, key in zip(s["kv_cache_spec"]["layers"], s["kv_cache_spec"]["spec"], strict=True)
        }
        for s in stages
    ]


def _kvplan_stages(
    case: dict[str, Any], result: dict[str, Any], version: str
) -> list[dict[str, dict[str, Any]]]:
    release = resolve_release(version)
    model = ModelInput(label=case["config"], source=case["config"], config=_config(case))
    layout = build_layout(describe(model, release), merge({}, None, _options(case, result, version)), release)
    return [{name: _kvplan_spec(spec) for name, spec in stage.items()} for stage in layout.stage_specs]


def _first_difference(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    if len(ours) != len(theirs):
        return f"{len(ours)} stages, vLLM has {len(theirs)}"
    for rank, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if list(a) != list(b):
            return (
                f"stage {rank}: layer names differ; vLLM only {[n for n in b if n not in a][:3]}, "
                f"kvplan only {[n for n in a if n not in b][:3]}"
            )
        for name in a:
            if a[name] != b[name]:
                return f"stage {rank} {name}: kvplan {a[name]} vs vLLM {b[name]}"
    return "equal"


def _built(result: dict[str, Any]) -> bool:
    return result["status"] in ("ok", "planner_error")


@pytest.mark.parametrize(("version", "case"), RUNS)
def test_layers_equal_vllm(version: str, case: dict[str, Any]) -> None:
    fx, result = _result(version, case)
    if not _built(result):
        with pytest.raises(KvplanError):
            _kvplan_stages(case, result, version)
        return
    ours, theirs = _kvplan_stages(case, result, version), _vllm_stages(fx, result)
    assert ours == theirs, _first_difference(ours, theirs)


@pytest.mark.parametrize(("version", "case"), RUNS)
def test_groups_and_blocks_equal_vllm(version: str, case: dict[str, Any]) -> None:
    _, result = _result(version, case)
    if not _built(result):
        return
    planner = result.get("planner") or {}
    options = _options(case, result, version)
    plan = api.plan(_config(case), **options)
    if "workers" not in planner:
        # vLLM refused at startup: one request of max_model_len does not fit
        message = str(planner["error"]["message"])
        estimate = re.search(r"estimated maximum model length is (\d+)", message)
        assert estimate, message
        assert not plan.kv.fit.fits
        assert plan.kv.fit.estimated_max_model_len == int(estimate.group(1))
        return
    ours = [sorted(g.layer_names for g in stage.groups if g.layer_names) for stage in plan.kv.stages]
    theirs = [
        sorted(tuple(g["layer_names"]) for g in worker["kv_cache_groups"] if g["layer_names"])
        for worker in planner["workers"]
    ]
    assert ours == theirs
    assert plan.num_blocks == planner["workers"][0]["num_blocks"]


# ---------------------------------------------------------------- rules checked by hand

_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "hidden_size": 1024,
    "torch_dtype": "bfloat16",
}


def _describe(cfg: dict[str, Any], version: str = "0.33.0") -> Any:
    return describe(ModelInput(label="config", source="config", config=cfg), resolve_release(version))


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"max_position_embeddings": 4096}, 4096),
        ({"max_position_embeddings": 4096, "seq_length": 2048}, 2048),  # the smallest key
        ({"max_position_embeddings": 4096, "model_max_length": 8192}, 8192),  # model_max_length wins
        ({}, 2048),  # none of vLLM's keys: vLLM assumes 2048
    ],
)
def test_model_length_keys(keys: dict[str, int], expected: int) -> None:
    # vLLM's derive_max_model_len_and_key and _get_and_verify_max_len (config/model.py)
    assert _describe({**_LLAMA, **keys}).max_position_embeddings == expected


def test_class_defaults_follow_the_model_type() -> None:
    # MistralConfig's sliding_window defaults to 4096; a MistralForCausalLM config of
    # model_type llama is read by LlamaConfig, which has no window.
    mistral = {**_LLAMA, "architectures": ["MistralForCausalLM"], "model_type": "mistral"}
    assert [layer.kind for layer in _describe(mistral).layers] == ["sliding_window"] * 2
    as_llama = {**mistral, "model_type": "llama"}
    assert [layer.kind for layer in _describe(as_llama).layers] == ["full"] * 2


def test_gpt2_key_spellings() -> None:
    # GPT2Config's attribute_map: n_layer, n_head, n_embd, n_positions
    cfg = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_layer": 3,
        "n_head": 4,
        "n_embd": 256,
    }
    desc = _describe(cfg)
    assert [layer.name for layer in desc.layers] == [f"transformer.h.{i}.attn.attn" for i in range(3)]
    assert {(layer.num_kv_heads, layer.head_size) for layer in desc.layers} == {(4, 64)}
    assert desc.max_position_embeddings == 1024  # the class's n_positions


def test_architectures_vllm_removed_are_refused_from_that_release() -> None:
    # registry.py lists InternLMForCausalLM / AquilaForCausalLM in _PREVIOUSLY_SUPPORTED_MODELS
    # from 0.24.0 / 0.25.0 (last served 0.23.0 / 0.24.0)
    internlm = {**_LLAMA, "architectures": ["InternLMForCausalLM"], "model_type": "internlm"}
    assert len(_describe(internlm, "0.23.0").layers) == 2
    with pytest.raises(KvplanError, match="removed in 0.24.0"):
        _describe(internlm, "0.24.0")
    aquila = {**_LLAMA, "architectures": ["AquilaForCausalLM"], "model_type": "aquila"}
    assert len(_describe(aquila, "0.24.0").layers) == 2
    with pytest.raises(KvplanError, match="removed in 0.25.0"):
        _describe(aquila, "0.25.0")


def test_kimi_k2_is_not_an_architecture_name() -> None:
    # Kimi K2 checkpoints name DeepseekV3ForCausalLM; no vLLM registry lists KimiK2ForCausalLM
    with pytest.raises(KvplanError, match="not one kvplan can derive"):
        _describe({**_LLAMA, "architectures": ["KimiK2ForCausalLM"]})


def test_deepseek_v1_is_plain_attention() -> None:
    # deepseek_v2.py builds DeepseekAttention (GQA, hidden/heads) for model_type deepseek
    cfg = {**_LLAMA, "architectures": ["DeepseekForCausalLM"], "model_type": "deepseek", "head_dim": 64}
    layers = _describe(cfg).layers
    assert {(layer.kind, layer.num_kv_heads, layer.head_size) for layer in layers} == {("full", 2, 128)}


# KV bytes per token of the presets added with these families (TP 1, whole model):
# layers x 2 (K, V) x KV heads x head size x bytes
PRESET_BYTES = {
    "glm-4.5-air": 46 * 2 * 8 * 128 * 2,  # head_dim 128, not 4096/96
    "minimax-m2.7": 62 * 2 * 8 * 128 * 2,
    "mixtral-8x7b": 32 * 2 * 8 * 128 * 2,
    "gemma-2b": 18 * 2 * 1 * 256 * 2,  # one KV head, head_dim 256
    "gpt2": 12 * 2 * 12 * 64 * 2,  # MHA, 768/12; float32 checkpoints are served in bfloat16
    "gpt-j-6b": 28 * 2 * 16 * 256 * 2,  # MHA, 4096/16
    "starcoder2-7b": 32 * 2 * 4 * 128 * 2,  # 4608/36, window 4096 on every layer
    "olmo-2-7b": 32 * 2 * 32 * 128 * 2,  # float32 checkpoint, bfloat16 cache
    "olmo-3.1-32b": 64 * 2 * 8 * 128 * 2,  # 5120/40
    "phi-1": 24 * 2 * 32 * 64 * 2,  # MHA, 2048/32, float32 checkpoint
    "aya-23-8b": 32 * 2 * 8 * 128 * 2,
    "chatglm3-6b": 28 * 2 * 2 * 128 * 2,  # multi_query_group_num 2, 4096/32
    "deepseek-moe-16b": 28 * 2 * 16 * 128 * 2,
    "internlm2.5-7b": 32 * 2 * 8 * 128 * 2,
    "minicpm-2b": 40 * 2 * 36 * 64 * 2,  # 2304/36
    "nemotron-mini-4b": 32 * 2 * 8 * 128 * 2,  # head_dim 128 (3072/24)
    "orion-14b": 40 * 2 * 40 * 128 * 2,
    "redpajama-incite-3b": 32 * 2 * 32 * 80 * 2,  # MHA, 2560/32
    "gpt-bigcode-santacoder": 24 * 2 * 1 * 128 * 2,  # multi_query: one KV head, 2048/16
    "llama-3.3-nemotron-super-49b": 49 * 2 * 8 * 128 * 2,  # 49 of 80 blocks keep attention, 64/8 KV heads
    "qwen1.5-moe-a2.7b": 24 * 2 * 16 * 128 * 2,
}


@pytest.mark.parametrize("name", sorted(PRESET_BYTES))
def test_preset_bytes_per_token(name: str) -> None:
    plan = api.plan(name, kv_cache_memory="40GiB")
    total = sum(spec.bytes_per_token or 0 for specs in plan.layout.stage_specs for spec in specs.values())
    assert total == PRESET_BYTES[name]
