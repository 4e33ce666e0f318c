"""Every model preset's KV bytes per token (TP=1, whole model), computed by hand
from the preset's own config: layers x 2 (K, V) x KV heads x head size x 2 bytes
for attention, layers x (kv_lora_rank + qk_rope_head_dim) x 2 bytes for MLA."""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.inputs import presets

HAND = {
    "llama-3.1-8b": 32 * 2 * 8 * 128 * 2,  # head 4096/32 = 128
    "llama-3.1-70b": 80 * 2 * 8 * 128 * 2,  # head 8192/64 = 128
    "llama-3.3-70b": 80 * 2 * 8 * 128 * 2,
    "llama-3.2-1b": 16 * 2 * 8 * 64 * 2,  # head_dim 64
    "llama-3.2-3b": 28 * 2 * 8 * 128 * 2,  # head_dim 128
    "qwen2.5-7b": 28 * 2 * 4 * 128 * 2,  # head 3584/28 = 128
    "qwen3-0.6b": 28 * 2 * 8 * 128 * 2,  # head_dim 128 (not 1024/16)
    "qwen3-8b": 36 * 2 * 8 * 128 * 2,
    "qwen3-32b": 64 * 2 * 8 * 128 * 2,
    "qwen3-30b-a3b": 48 * 2 * 4 * 128 * 2,
    "qwen3-235b-a22b": 94 * 2 * 4 * 128 * 2,
    "mistral-7b-v0.1": 32 * 2 * 8 * 128 * 2,  # sliding window 4096 on every layer
    "mistral-small-24b": 40 * 2 * 8 * 128 * 2,  # head_dim 128, not 5120/32 = 160
    "phi-3-mini": 32 * 2 * 32 * 96 * 2,  # head 3072/32 = 96, MHA
    "phi-4": 40 * 2 * 10 * 128 * 2,
    "gemma-2-9b": 42 * 2 * 8 * 256 * 2,  # head_dim 256
    "gemma-2-27b": 46 * 2 * 16 * 128 * 2,
    "gemma-3-27b": 62 * 2 * 16 * 128 * 2,
    "gpt-oss-20b": 24 * 2 * 8 * 64 * 2,
    "gpt-oss-120b": 36 * 2 * 8 * 64 * 2,
    "llama-4-scout": 48 * 2 * 8 * 128 * 2,
    "deepseek-v2-lite": 27 * (512 + 64) * 2,  # MLA: one latent row, no K/V pair
    "deepseek-v3": 61 * (512 + 64) * 2,
    "deepseek-r1": 61 * (512 + 64) * 2,
    "kimi-k2": 61 * (512 + 64) * 2,
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_preset_bytes_per_token(name):
    if name not in presets.model_names():
        pytest.skip(f"preset {name} not shipped")
    result = api.plan(name, **{"kv_cache_memory": "40GiB", "max_model_len": 4096})
    total = sum(spec.bytes_per_token or 0 for specs in result.layout.stage_specs for spec in specs.values())
    assert total == HAND[name]


def test_required_presets_exist():
    required = {
        "llama-3.1-8b", "llama-3.1-70b", "llama-3.3-70b", "qwen2.5-7b", "qwen3-0.6b", "qwen3-8b",
        "qwen3-32b", "qwen3-30b-a3b", "qwen3-235b-a22b", "mistral-7b-v0.1", "phi-3-mini",
        "gemma-2-9b", "gpt-oss-20b", "gpt-oss-120b", "deepseek-v3", "llama-4-scout", "qwen3-next-80b-a3b",
    }  # fmt: skip
    assert required <= set(presets.model_names())
    assert len(presets.model_names()) >= 15


def test_every_preset_cites_its_source():
    for name in presets.model_names():
        info = presets.model_info(name)
        assert str(info.get("source", "")).startswith("http"), name
        assert info["config"].get("architectures"), name


def test_gpu_presets_have_sources_and_sane_sizes():
    gpus = presets.gpus()
    assert len(gpus) >= 15
    for gpu in gpus:
        assert gpu.source, gpu.name
        assert 8 << 30 < gpu.total_bytes < 400 << 30, gpu.name
    # H100 80GB SXM: torch reports 81090 MiB (see gpus.yaml's source).
    assert presets.find_gpu("h100-80gb").total_bytes == 81090 * 1024 * 1024


def test_every_gpu_name_and_alias_resolves_to_its_entry():
    # find_gpu parses only the entries mentioning the name; it must agree with the full file.
    for gpu in presets.gpus():
        for name in (gpu.name, gpu.name.upper(), *gpu.aliases):
            found = presets.find_gpu(name)
            assert (found.name, found.total_bytes, found.arch) == (gpu.name, gpu.total_bytes, gpu.arch)


# GPUs that public vLLM startup logs name, with the total each preset's source quotes:
# (name, quoted figure, unit); MiB figures are torch's truncated prints, GiB ones the
# two-decimal OOM "total capacity", so the preset must round back to the quote.
PUBLIC_LOG_GPUS = [
    ("RTX-3060", 12044, "MiB"),
    ("RTX-4070", 11874, "MiB"),
    ("RTX-4070-Ti-SUPER", 15974, "MiB"),
    ("RTX-4080", 16049, "MiB"),
    ("RTX-PRO-6000", 97250, "MiB"),
    ("GH200", 95.00, "GiB"),
    ("L20", 44.53, "GiB"),
    ("MI355X", 287.98, "GiB"),
    ("MI250X", 65520, "MiB"),
]


@pytest.mark.parametrize(("name", "quoted", "unit"), PUBLIC_LOG_GPUS, ids=[g[0] for g in PUBLIC_LOG_GPUS])
def test_public_log_gpu_presets_match_their_quoted_totals(name, quoted, unit):
    gpu = presets.find_gpu(name)
    if unit == "MiB":
        assert gpu.total_bytes // (1 << 20) == quoted
    else:
        assert round(gpu.total_bytes / (1 << 30), 2) == quoted
    assert (f"{quoted:.2f}" if unit == "GiB" else str(quoted)) in gpu.source


def test_exact_byte_presets_from_public_prints():
    # GB10: totalMem=130602405888 (CUDA device query); A800: memory_bytes=85094825984 (see gpus.yaml).
    assert presets.find_gpu("dgx spark").total_bytes == 130602405888
    assert presets.find_gpu("nvidia a800-sxm4-80gb").total_bytes == 85094825984
    # GB10 is an integrated GPU (vLLM reads free memory from psutil there); GH200 is not.
    assert presets.find_gpu("GB10").unified and not presets.find_gpu("GH200").unified
