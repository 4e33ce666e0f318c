"""Sliding-window text models: kvplan's layers equal those vLLM's own model code builds.

For every case of ``tests/oracle/cases/sliding.json`` (a config under
``tests/oracle/configs``, TP and PP), ``tests/oracle/fixtures/sliding/
vllm-<version>.json`` records the KV cache spec of every layer vLLM built on
each pipeline stage (``tools/oracle_family.py`` runs vLLM's model code on the
meta device).  kvplan derives the same config and must name the same layers
with the same specs: class, block size, KV heads per rank, K and V head sizes,
dtype, window, page size.
"""

from __future__ import annotations

import pytest
from oracle_layers import cases, check

from kvplan import api
from kvplan.vllm.specs import FullAttentionSpec, SlidingWindowSpec
from tools.oracle_oldest import extra_runs

FAMILY = "sliding"
VERSIONS = ("0.33.0", "0.19.1")

# Cases vLLM's code could not build for a reason outside its KV cache decisions
# (keys its model reads that the class-default config lacks); kvplan is not
# compared there.
ORACLE_GAPS: dict[tuple[str, str], str] = {
    ("*", "apertus-defaults"): "vLLM's xIELU activation copies parameter values at build time (meta device)",
    ("*", "flint-mixed"): "vLLM's Flint attention imports flashinfer (not installed here)",
    ("0.19.1", "afmoe-defaults"): "transformers 4.57 has no Afmoe class to fill in the layer_types left out",
    ("0.19.1", "mimo-v2-flash-synthetic"): "transformers 4.57 has no mimo_v2_flash config class",
}


def _params():
    for version in VERSIONS:
        for case in cases(FAMILY):
            yield pytest.param(version, case, id=f"{version}-{case['id']}")
    # and on the oldest release serving the case's architecture
    for version, case in extra_runs(FAMILY, VERSIONS):
        yield pytest.param(version, case, id=f"{version}-{case['id']}")


@pytest.mark.parametrize(("version", "case"), list(_params()))
def test_layers_equal_vllm(version, case):
    check(FAMILY, version, case, ORACLE_GAPS)


def _specs(cfg, **serving):
    r = api.plan(cfg, kv_cache_memory="40GiB", **serving)
    return r.layout.stage_specs[0]


def test_exaone4_32b_three_local_one_global():
    # EXAONE-4.0-32B: 64 layers, layer_types LLLG, window 4096, 8 KV heads, head_dim 128;
    # at TP 8 one KV head per rank: page 16 x 2 x 1 x 128 x 2 = 8,192 B.
    specs = _specs("exaone-4.0-32b", tp=8)
    assert isinstance(specs["model.layers.0.self_attn.attn"], SlidingWindowSpec)
    assert specs["model.layers.0.self_attn.attn"].sliding_window == 4096
    full = [n for n, s in specs.items() if isinstance(s, FullAttentionSpec)]
    assert full == [f"model.layers.{i}.self_attn.attn" for i in range(3, 64, 4)]
    assert specs["model.layers.3.self_attn.attn"].page_size_bytes == 8192


def _cohere2_moe():
    # No layer_types: Cohere2MoeConfig's pattern, sliding unless (i + 1) % 4 == 0.
    return {
        "architectures": ["Cohere2MoeForCausalLM"],
        "model_type": "cohere2_moe",
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "hidden_size": 1024,
        "head_dim": 128,
        "sliding_window": 4096,
        "max_position_embeddings": 8192,
    }


def test_cohere2_moe_window_grows_by_one_from_029():
    # cohere2_moe.py passes sliding_window + 1 from 0.29.0; 0.28.0 passes the window itself.
    new = _specs(_cohere2_moe(), vllm_version="0.29")
    old = _specs(_cohere2_moe(), vllm_version="0.28")
    assert new["model.layers.0.self_attn.attn"].sliding_window == 4097
    assert old["model.layers.0.self_attn.attn"].sliding_window == 4096
    assert isinstance(new["model.layers.3.self_attn.attn"], FullAttentionSpec)


def test_laguna_global_layers_never_take_the_model_window():
    # Laguna clears cache_config.sliding_window: with every layer full (the class default
    # when layer_types is absent) no layer slides, although sliding_window is 512.
    cfg = {
        "architectures": ["LagunaForCausalLM"],
        "model_type": "laguna",
        "num_hidden_layers": 4,
        "num_attention_heads": 16,
        "num_key_value_heads": 4,
        "hidden_size": 2048,
        "max_position_embeddings": 4096,
    }
    specs = _specs(cfg)
    assert all(isinstance(s, FullAttentionSpec) for s in specs.values())
    # head_dim is LagunaConfig's default 128, not hidden / heads (2048 / 16 = 128 here too).
    assert specs["model.layers.0.self_attn.attn"].head_size == 128


def test_mimo_v2_sliding_layers_keep_narrower_v_rows():
    # hybrid_layer_pattern 1 = sliding: 8 KV heads of K 192 / V 128 over a 128-token window;
    # page 16 x 8 x (192 + 128) x 2 = 81,920 B at TP 1.
    cfg = {
        "architectures": ["MiMoV2FlashForCausalLM"],
        "num_hidden_layers": 2,
        "hybrid_layer_pattern": [0, 1],
        "num_attention_heads": 64,
        "num_key_value_heads": 4,
        "head_dim": 192,
        "v_head_dim": 128,
        "swa_num_attention_heads": 64,
        "swa_num_key_value_heads": 8,
        "swa_head_dim": 192,
        "swa_v_head_dim": 128,
        "sliding_window_size": 128,
        "hidden_size": 4096,
        "max_position_embeddings": 32768,
    }
    specs = _specs(cfg)
    swa = specs["model.layers.1.self_attn.attn"]
    assert isinstance(swa, SlidingWindowSpec) and swa.sliding_window == 128
    assert swa.page_size_bytes == 16 * 8 * (192 + 128) * 2
    assert specs["model.layers.0.self_attn.attn"].page_size_bytes == 16 * 4 * (192 + 128) * 2
