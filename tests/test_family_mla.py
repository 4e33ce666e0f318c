"""MLA and DeepSeek Sparse Attention against vLLM's own model code (the oracle).

Cases: ``tests/oracle/cases/mla.json`` (DeepSeek V2/V3, DeepSeek-V3.2, GLM-5,
GLM-4.7-Flash, Kimi K2.5, Kimi-VL, DeepSeek-VL2, Mistral Large 3, AXK1,
LongCat-Flash, Pangu Ultra MoE, Sarvam-MLA; TP 1 and TP > 1, capabilities
8.0 / 9.0 / 10.0); vLLM's answers: ``tests/oracle/fixtures/mla/``.
"""

from __future__ import annotations

from typing import Any

import pytest
from family_oracle import compare, params

from kvplan.api import plan
from kvplan.errors import InputError
from kvplan.model.families.mla import skips_indexer
from kvplan.releases import resolve_release
from tools.oracle_oldest import extra_runs

RELEASES = ("0.33.0", "0.19.1")


# Known gaps, still compared (strict xfail).  vLLM 0.19.1's FlashInfer sparse MLA backend imports
# flashinfer when it is selected; the oracle's environment has none, so it falls back to FlashMLA
# sparse (fp8_ds_mla).  vLLM's CUDA wheel depends on flashinfer-python: on a B200 the first choice
# for fp8 (platforms/cuda.py) is FlashInfer's, which keeps plain fp8 rows, as kvplan plans it.
KNOWN_GAPS = {
    ("0.19.1", "deepseek-v3.2-tp1-sm100-fp8"): "the oracle's 0.19.1 environment has no flashinfer",
    # A difference not resolved yet: vLLM 0.26.0's LongCat-Flash-Ngram (longcat_flash_ngram.py
    # resets num_hidden_layers to num_layers) registers KV layers for decoder layers 0-13 only
    # (28 attention layers); kvplan derives 2 x num_layers = 56 decoder layers (112) there.
    # (The 0.26.0 environment the fixture came from has transformers 5.24.0.)
    **{
        ("0.26.0", f"longcat-flash-ngram-{t}"): "vLLM 0.26.0 registers 14 of LongCat-Flash-Ngram's decoder "
        "layers' attention; kvplan derives 56"
        for t in ("tp1", "tp8")
    },
}


def _marked(params_: list[Any]) -> list[Any]:
    out = []
    for p in params_:
        version, case = p.values
        gap = KNOWN_GAPS.get((version, case["id"]))
        marks = [pytest.mark.xfail(reason=gap, strict=True)] if gap else []
        out.append(pytest.param(version, case, id=p.id, marks=marks))
    return out


# every case on the releases it lists, and on the oldest release serving its architecture
RUNS = params("mla", RELEASES) + [
    pytest.param(v, c, id=f"{v}-{c['id']}") for v, c in extra_runs("mla", RELEASES)
]


@pytest.mark.parametrize(("version", "case"), _marked(RUNS))
def test_layers_groups_and_blocks_equal_vllms(version: str, case: dict[str, Any]) -> None:
    compare("mla", version, case)


def test_indexer_row_is_132_bytes_and_dsa_blocks_are_64_tokens() -> None:
    """index_head_dim 128 fp8 values + one 4-byte scale per 128 = 132 bytes a token (deepseek_v32
    attention.py); one 64-token block of all 61 layers of DeepSeek-V3.2 at bf16:
    61 x 64 x (576 x 2 + 132) = 5,012,736 bytes, so 20 GiB hold 4,284 blocks."""
    got = plan("deepseek-v3.2", kv_cache_memory="20GiB")
    indexer = got.layout.stage_specs[0]["model.layers.0.self_attn.indexer.k_cache"]
    assert (indexer.head_size, indexer.dtype, indexer.block_size) == (132, "uint8", 64)  # type: ignore[attr-defined]
    assert got.stages[0].bytes_per_block == 61 * 64 * (576 * 2 + 132)
    assert got.num_blocks == 20 * 2**30 // 5_012_736


def test_fp8_on_hopper_is_stored_as_fp8_ds_mla() -> None:
    """FlashMLA's sparse kernels keep an fp8 latent cache as 656-byte fp8_ds_mla rows."""
    got = plan("deepseek-v3.2", kv_cache_memory="20GiB", kv_cache_dtype="fp8", gpu="H100-80GB")
    spec = got.layout.stage_specs[0]["model.layers.0.self_attn.attn"]
    assert spec.cache_dtype_str == "fp8_ds_mla"  # type: ignore[attr-defined]
    assert spec.page_size_bytes == 64 * 656


def test_glm5_defaults_to_fp8_on_blackwell_from_032() -> None:
    """model_executor/models/config.py (0.32+): GlmMoeDsaForCausalLM on SM10x with auto -> fp8_e4m3."""
    new = plan("glm-5", kv_cache_memory="20GiB", gpu="B200")
    old = plan("glm-5", kv_cache_memory="20GiB", gpu="B200", vllm_version="0.31")
    assert new.kv_cache_dtype == "fp8_e4m3" and old.kv_cache_dtype == "auto"
    assert new.layout.stage_specs[0]["model.layers.0.self_attn.attn"].page_size_bytes == 64 * 576


def test_sparse_attention_is_refused_before_hopper() -> None:
    with pytest.raises(InputError, match="no sparse MLA backend"):
        plan("deepseek-v3.2", kv_cache_memory="20GiB", gpu="A100-80GB")


def test_indexer_skip_pattern_from_021() -> None:
    """index_topk_freq 2 with the default offset 2: layers 0, 1, 3, 5, ... keep the indexer."""
    cfg = {"index_topk": 2048, "index_topk_freq": 2}
    new, old = resolve_release("0.21"), resolve_release("0.20")
    assert [skips_indexer(cfg, "t", new, i) for i in range(6)] == [False, False, True, False, True, False]
    assert not any(skips_indexer(cfg, "t", old, i) for i in range(6))
    pattern = {"index_topk": 2048, "index_topk_pattern": "FFSS"}
    assert [skips_indexer(pattern, "t", new, i) for i in range(5)] == [False, False, True, True, False]
