"""Speculative decoding against vLLM's own model code (the oracle).

Cases: ``tests/oracle/cases/spec.json`` (MTP drafters of DeepSeek-V3/V3.2,
GLM-5, GLM-4.7-Flash, LongCat-Flash, Qwen3-Next, Qwen3.5; an EAGLE3 head on
Llama-3.1-8B; ngram); vLLM's answers: ``tests/oracle/fixtures/spec/``.
The drafter is built by the oracle the way vLLM's model runner builds it, on
the last pipeline stage (``tools/oracle_mla_spec.py``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from family_oracle import compare, params

from kvplan.api import plan
from kvplan.errors import InputError
from kvplan.inputs.speculative import parse
from kvplan.vllm.specs import SlidingWindowSpec, Usage

RELEASES = ("0.33.0", "0.19.1")
MTP1 = '{"method": "deepseek_mtp", "num_speculative_tokens": 1}'


# Known gaps, still compared (strict xfail: the fix makes them fail loudly).
KNOWN_GAPS: dict[str, str] = {}


def _marked(params_: list[Any]) -> list[Any]:
    out = []
    for p in params_:
        version, case = p.values
        gap = KNOWN_GAPS.get(f"{version}-{case['id']}")
        marks = [pytest.mark.xfail(reason=gap, strict=True)] if gap else []
        out.append(pytest.param(version, case, id=p.id, marks=marks))
    return out


@pytest.mark.parametrize(("version", "case"), _marked(params("spec", RELEASES)))
def test_layers_groups_and_blocks_equal_vllms(version: str, case: dict[str, Any]) -> None:
    compare("spec", version, case)


def test_deepseek_v3_mtp_joins_the_target_group() -> None:
    """One MTP layer (num_nextn_predict_layers 1) of the same 576-wide latent: 62 layers in one
    group, 62 x 16 x 1152 = 1,142,784 bytes a block, 20 GiB // that = 18,791 blocks."""
    got = plan("deepseek-v3", kv_cache_memory="20GiB", speculative_config=MTP1)
    (group,) = got.groups
    assert len(group.layer_names) == 62 and group.layer_names[-1] == "model.layers.61.self_attn.attn"
    assert got.layout.stage_specs[0]["model.layers.61.self_attn.attn"].is_draft
    assert got.num_blocks == 20 * 2**30 // (62 * 16 * 1152) == 18791


def test_the_drafter_lives_on_the_last_stage() -> None:
    got = plan("deepseek-v3", kv_cache_memory="20GiB", pp=2, speculative_config=MTP1)
    first, last = got.layout.stage_specs
    assert "model.layers.61.self_attn.attn" in last and "model.layers.61.self_attn.attn" not in first


def test_mamba_states_keep_one_block_per_speculative_token() -> None:
    got = plan(
        "qwen3-next-80b-a3b",
        kv_cache_memory="20GiB",
        tp=4,
        speculative_config={"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 3},
    )
    assert got.layout.context.num_speculative_tokens == 3
    mamba = got.layout.stage_specs[0]["model.layers.0.linear_attn"]
    assert mamba.num_speculative_blocks == 3  # type: ignore[attr-defined]


def test_multi_module_mtp_retains_extra_sliding_tokens() -> None:
    """kv_cache_utils / kv_cache_planning: num_speculative_tokens - 1 tokens below the window."""
    spec = SlidingWindowSpec(
        block_size=16, num_kv_heads=8, head_size=128, dtype="bfloat16", sliding_window=4096
    )
    usage = Usage(max_model_len=1 << 20, max_num_batched_tokens=8192)
    base = spec.max_memory_usage_bytes(usage)
    extra = replace(spec, extra_retained_tokens=2).max_memory_usage_bytes(usage)
    # cdiv(4095 + 8192, 16) + 1 = 769 blocks; 12,289 tokens need cdiv(12289, 16) + 1 = 770.
    assert base == 769 * spec.page_size_bytes and extra == 770 * spec.page_size_bytes


def test_speculative_config_is_vllms_json() -> None:
    spec = parse(json.loads(MTP1), None)
    assert (spec.method, spec.num_speculative_tokens, spec.given_method) == ("mtp", 1, "deepseek_mtp")
    with pytest.raises(InputError, match="num_speculative_tokens must be provided"):
        parse('{"method": "mtp"}', None)
    with pytest.raises(InputError, match="draft_tensor_parallel_size"):
        parse('{"method": "mtp", "num_speculative_tokens": 1, "tensor_parallel_size": 2}', None)
    with pytest.raises(InputError, match="not a field"):
        parse('{"method": "mtp", "num_speculative_tokens": 1, "n_predict": 2}', None)
    with pytest.raises(InputError, match="not valid JSON"):
        parse("{method: mtp}", None)


def test_cli_takes_the_json_string(kvplan) -> None:
    doc = kvplan(
        "plan", "deepseek-v3", "--kv-cache-memory", "20GiB", "--speculative-config", MTP1, "--format", "json"
    ).json()
    assert doc["num_blocks"] == 18791


def test_drafters_kvplan_cannot_derive_are_refused() -> None:
    with pytest.raises(InputError, match="no MTP drafter kvplan derives"):
        plan(
            "llama-3.1-8b",
            kv_cache_memory="20GiB",
            speculative_config={"method": "mtp", "num_speculative_tokens": 1},
        )
    with pytest.raises(InputError, match="model_type"):
        plan("kimi-k2", kv_cache_memory="20GiB", speculative_config=MTP1)
    with pytest.raises(InputError, match="does not derive the KV cache"):
        plan(
            "llama-3.1-8b",
            kv_cache_memory="20GiB",
            speculative_config={
                "method": "draft_model",
                "model": "llama-3.2-1b",
                "num_speculative_tokens": 3,
            },
        )
