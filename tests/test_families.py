"""Per-family layer specs and groups, derived by hand from each model's published config.

Page size of attention = block x 2 (K, V) x KV heads per rank x head size x 2 bytes (bf16).
Configs: the presets' files (each cites its Hugging Face config.json), or a config
written here with the published values it names.
"""

from __future__ import annotations

import json

import pytest

from kvplan import api
from kvplan.inputs import presets
from kvplan.vllm.specs import FullAttentionSpec, MambaSpec, MLAAttentionSpec, SlidingWindowSpec

MEM = {"kv_cache_memory": "40GiB"}


def groups(result):
    return [(type(g.spec).__name__, len(g.layer_names)) for g in result.groups]


def attention_blocks(result):
    """Block sizes of the attention groups, after the planner has unified the pages."""
    return {g.spec.block_size for g in result.groups if not isinstance(g.spec, MambaSpec)}


def test_mistral_7b_v01_slides_on_every_layer():
    # config: sliding_window 4096, no layer_types -> vLLM's model-wide window on all 32 layers.
    r = api.plan("mistral-7b-v0.1", **MEM)
    specs = list(r.layout.stage_specs[0].values())
    assert all(isinstance(s, SlidingWindowSpec) and s.sliding_window == 4096 for s in specs)
    assert groups(r) == [("SlidingWindowSpec", 32)]
    assert specs[0].page_size_bytes == 16 * 2 * 8 * 128 * 2


def test_phi3_mini_global_window_2047():
    # Phi-3-mini-4k: sliding_window 2047, 32 heads = 32 KV heads, head 3072 / 32 = 96.
    r = api.plan("phi-3-mini", **MEM)
    spec = r.layout.stage_specs[0]["model.layers.0.self_attn.attn"]
    assert isinstance(spec, SlidingWindowSpec) and spec.sliding_window == 2047
    assert spec.page_size_bytes == 16 * 2 * 32 * 96 * 2


def test_qwen25_without_sliding_window_is_full():
    # Qwen2.5-7B: use_sliding_window false (its sliding_window 131072 is ignored); head 3584/28 = 128.
    r = api.plan("qwen2.5-7b", **MEM)
    assert groups(r) == [("FullAttentionSpec", 28)]


def test_gemma2_alternates_even_sliding_odd_full():
    # gemma-2-9b: 42 layers, (i + 1) % 2 -> even i slide (window 4096); head_dim 256, 8 KV heads.
    r = api.plan("gemma-2-9b", **MEM)
    specs = r.layout.stage_specs[0]
    assert isinstance(specs["model.layers.0.self_attn.attn"], SlidingWindowSpec)
    assert isinstance(specs["model.layers.1.self_attn.attn"], FullAttentionSpec)
    # 21 + 21 layers: one group of each, group_size 21, bytes per block 21 x page.
    assert sorted(groups(r)) == [("FullAttentionSpec", 21), ("SlidingWindowSpec", 21)]
    page = 16 * 2 * 8 * 256 * 2
    assert r.stages[0].bytes_per_block == 21 * page


def test_gemma3_27b_five_to_one_at_tp8():
    # gemma-3-27b: 62 layers, full where i % 6 == 5 (10 layers), 52 slide (window 1024);
    # 16 KV heads / TP 8 = 2 per rank, head_dim 128 -> page 16 x 2 x 2 x 128 x 2 = 16384.
    r = api.plan("gemma-3-27b", **{**MEM, "tp": 8})
    specs = r.layout.stage_specs[0]
    full = [n for n, s in specs.items() if isinstance(s, FullAttentionSpec)]
    assert full == [f"language_model.model.layers.{i}.self_attn.attn" for i in range(5, 62, 6)]
    # group size = 10 (52 >= 1.5 x 10): 52 sliding layers -> cdiv(52, 10) = 6 groups of 9,9,9,9,8,8.
    assert sorted(n for _, n in groups(r)) == [8, 8, 9, 9, 9, 9, 10]
    assert r.stages[0].bytes_per_block == 10 * 16384
    assert r.num_blocks == 40 * 2**30 // (10 * 16384) == 262144


def test_gpt_oss_120b_alternating_window_128_at_tp8():
    # 36 layers; even i slide (window 128); 8 KV heads / 8 = 1 per rank; head_dim 64.
    r = api.plan("gpt-oss-120b", **{**MEM, "tp": 8})
    specs = r.layout.stage_specs[0]
    assert specs["model.layers.0.attn.attn"] == SlidingWindowSpec(
        block_size=16, num_kv_heads=1, head_size=64, dtype="bfloat16", sliding_window=128
    )
    assert isinstance(specs["model.layers.1.attn.attn"], FullAttentionSpec)
    assert sorted(groups(r)) == [("FullAttentionSpec", 18), ("SlidingWindowSpec", 18)]
    assert r.stages[0].bytes_per_block == 18 * 16 * 2 * 1 * 64 * 2


def test_llama4_scout_chunked_local_and_hybrid_manager_off_by_default_up_to_013():
    # 48 layers: no_rope_layers default -> full at i % 4 == 3 (12), chunked (8192) elsewhere.
    r = api.plan("llama-4-scout", **{**MEM, "tp": 8, "vllm_version": "0.13"})
    raw = r.layout.stage_specs[0]
    chunked = [s for s in raw.values() if s.kind == "chunked_local"]
    assert len(chunked) == 36 and chunked[0].attention_chunk_size == 8192
    # Up to 0.13 VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE defaults to 0 (vllm/envs.py), so
    # vLLM disables the hybrid manager for chunked attention: one full-attention group of 48.
    assert groups(r) == [("FullAttentionSpec", 48)]
    # From 0.14 it defaults to 1: the hybrid manager stays on (vLLM 0.33.0's own model and config:
    # tests/oracle/fixtures/vllm-0.33.0.json, llama-4-scout-tp8, disable_hybrid_kv_cache_manager false).
    on = api.plan("llama-4-scout", **{**MEM, "tp": 8})
    assert sorted(groups(on)) == [
        ("ChunkedLocalAttentionSpec", 12), ("ChunkedLocalAttentionSpec", 12),
        ("ChunkedLocalAttentionSpec", 12), ("FullAttentionSpec", 12),
    ]  # fmt: skip


@pytest.mark.parametrize(("version", "block"), [("0.17.0", 64), ("0.33.0", 16)])
def test_deepseek_v3_mla_not_sharded_by_tp(version, block):
    # kv_lora_rank 512 + qk_rope_head_dim 64 = 576, one latent "head", the same at TP 8.
    r = api.plan("deepseek-v3", **{**MEM, "tp": 8, "vllm_version": version})
    spec = r.layout.stage_specs[0]["model.layers.0.self_attn.attn"]
    assert isinstance(spec, MLAAttentionSpec)
    assert (spec.num_kv_heads, spec.head_size, spec.block_size) == (1, 576, block)
    assert spec.page_size_bytes == block * 576 * 2  # no K/V pair
    assert groups(r) == [("MLAAttentionSpec", 61)]


@pytest.mark.parametrize(("version", "block"), [("0.19.1", 144), ("0.33.0", 192)])
def test_qwen3_next_gated_delta_net_alignment(version, block):
    # TP 8: attention 2 KV heads -> 1 per rank, head 256 -> 1024 B/token;
    # GDN state: conv (3, (2*16*128 + 32*128)/8 = 1024) + temporal (32/8, 128, 128), bf16
    # = 6144 + 131072 = 137216 B.  0.19.1: 16 x cdiv(137216, 16 x 1024) = 144;
    # 0.33 (prefix caching on, align mode, FlashInfer's 64-token checkpoints on Hopper):
    # 64 x cdiv(137216, 65536) = 192.
    r = api.plan("qwen3-next-80b-a3b", **{**MEM, "tp": 8, "vllm_version": version})
    specs = r.layout.stage_specs[0]
    gdn = specs["model.layers.0.linear_attn"]
    assert isinstance(gdn, MambaSpec) and gdn.real_page_size_bytes == 137216
    assert gdn.page_size_bytes == block * 1024
    # 0.18 - 0.19 workers reset the layers' block size to 16 after building the model
    # (platforms/interface.py update_block_size_for_backend); the planner then grows the
    # attention group's blocks until its page equals the padded state page.
    layer_block = 16 if version == "0.19.1" else block
    assert specs["model.layers.3.self_attn.attn"].block_size == layer_block
    assert attention_blocks(r) == {block}
    assert sorted(n for _, n in groups(r)) == [12, 12, 12, 12]


@pytest.mark.parametrize(("version", "block"), [("0.19.1", 528), ("0.33.0", 1040)])
def test_nemotron_h_mamba2_state(version, block):
    # Nemotron-H-8B TP 1: conv (3, 128 x 64 + 2 x 8 x 128 = 10240) bf16 = 61440 B;
    # ssm (128, 64, 128): fp16 in 0.13 - 0.19 (2 B) = 2097152 B, fp32 from 0.20 = 4194304 B.
    # attention 8 KV heads x 128 x 2 x 2 = 4096 B/token -> 16 x cdiv(state, 65536).
    r = api.plan("nemotron-h-8b", **{**MEM, "vllm_version": version})
    mamba = r.layout.stage_specs[0]["model.layers.0.mixer"]
    assert mamba.real_page_size_bytes == 61440 + (2097152 if version == "0.19.1" else 4194304)
    # 0.19.1's layer spec keeps 16-token blocks; its group is grown to the aligned block.
    layer_block = 16 if version == "0.19.1" else block
    assert r.layout.stage_specs[0]["model.layers.7.mixer.attn"].block_size == layer_block
    assert attention_blocks(r) == {block}
    # 24 Mamba layers and 4 attention layers: groups of 4.
    assert sorted(n for _, n in groups(r)) == [4] * 7


def test_jamba_mamba1_state():
    # Jamba-v0.1: d_inner 2 x 4096 = 8192; conv (3, 8192) + ssm (8192, 16), bf16 = 49152 + 262144.
    r = api.plan("jamba-v0.1", **MEM)
    specs = r.layout.stage_specs[0]
    assert [n for n, s in specs.items() if not isinstance(s, MambaSpec)] == [
        f"model.layers.{i}.attn" for i in (4, 12, 20, 28)
    ]
    assert specs["model.layers.0.mixer"].real_page_size_bytes == 311296
    assert specs["model.layers.4.attn"].block_size == 16 * -(-311296 // 65536) == 80


def test_attention_free_mamba2():
    # Mamba-Codestral: 64 Mamba2 layers, no attention: conv (3, 8192 + 2 x 8 x 128) + ssm (128, 64, 128), bf16.
    # Its config names no length, so vLLM derives 2048 and refuses more (vllm-0.33.0.json:
    # mamba-codestral-7b-tp1 resolves max_model_len 2048).
    r = api.plan("mamba-codestral-7b", **MEM)
    assert r.max_model_len == 2048
    assert groups(r) == [("MambaSpec", 64)]
    assert r.groups[0].spec.page_size_bytes == 3 * 10240 * 2 + 128 * 64 * 128 * 2


def test_explicit_layers(tmp_path, kvplan):
    path = tmp_path / "m.yaml"
    path.write_text(
        "max_position_embeddings: 4096\n"
        "layers:\n"
        "  - {type: full, num_kv_heads: 8, head_size: 128}\n"
        "  - {type: sliding_window, num_kv_heads: 8, head_size: 128, sliding_window: 512}\n"
        "  - {name: model.layers.2.mixer, type: mamba, shapes: [[3, 1024], [8, 64, 16]], dtypes: [bfloat16, float32]}\n"
    )
    doc = kvplan("plan", path, "--kv-cache-memory", "1GiB", "--format", "json").json()
    kinds = [(layer["name"], layer["type"]) for layer in doc["layers"]]
    assert kinds[0] == ("model.layers.0.self_attn.attn", "full")
    assert kinds[2] == ("model.layers.2.mixer", "mamba")


def test_cohere2_window_grows_by_one_from_029(tmp_path):
    # Rule check on a Cohere2-shaped config: full at i % 4 == 3; vLLM 0.29+ passes window + 1.
    cfg = {
        "architectures": ["Cohere2ForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
        "num_key_value_heads": 8, "num_hidden_layers": 8, "sliding_window": 4096,
        "max_position_embeddings": 8192, "torch_dtype": "bfloat16",
    }  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    old = api.plan(str(path), **{**MEM, "vllm_version": "0.28"}).layout.stage_specs[0]
    new = api.plan(str(path), **{**MEM, "vllm_version": "0.29"}).layout.stage_specs[0]
    assert [s.kind for s in old.values()] == ["sliding_window"] * 3 + ["full"] + ["sliding_window"] * 3 + [
        "full"
    ]
    assert old["model.layers.0.self_attn.attn"].sliding_window == 4096
    assert new["model.layers.0.self_attn.attn"].sliding_window == 4097


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"num_key_value_heads": 48}, "num_key_value_heads"),
        ({"layer_types": ["full_attention"] * 3}, "layer_types"),
        ({"architectures": ["BrandNewForCausalLM"]}, "BrandNewForCausalLM"),
    ],
)
def test_contradictions_and_unknown_architectures_are_refused(tmp_path, kvplan, change, needle):
    cfg = {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
        "num_key_value_heads": 8, "num_hidden_layers": 32, "max_position_embeddings": 8192,
    }  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**cfg, **change}))
    out = kvplan("plan", path, "--kv-cache-memory", "1GiB")
    assert out.code == 2 and needle in out.stderr


def test_dcp_multiplies_logged_tokens_before_020():
    # 0.19.1: tokens = num_blocks // groups x block x DCP; DCP 2 keeps half the tokens per rank.
    # DCP reuses the TP ranks, so TP must be a multiple of it (vLLM refuses tp 1 with dcp 2).
    one = api.plan("llama-3.1-8b", **{**MEM, "vllm_version": "0.19.1", "tp": 2}).capacity
    two = api.plan("llama-3.1-8b", **{**MEM, "vllm_version": "0.19.1", "tp": 2, "dcp": 2}).capacity
    assert one is not None and two is not None
    assert two.tokens == 2 * one.tokens
    assert two.log_lines[0].startswith("Multiplying the GPU KV cache size by the cp_world_size 2")


def test_falcon_h1_has_attention_and_mamba2_in_every_layer(tmp_path):
    # Falcon-H1-7B-Instruct's published values (tiiuae/Falcon-H1-7B-Instruct config.json,
    # read at the mlx-community conversion): 44 layers, 12 heads / 2 KV heads, head_dim 128,
    # mamba_d_ssm 3072, 24 Mamba heads x 128, 1 group, d_state 256, d_conv 4, bf16.
    cfg = {
        "architectures": ["FalconH1ForCausalLM"], "hidden_size": 3072, "num_hidden_layers": 44,
        "num_attention_heads": 12, "num_key_value_heads": 2, "head_dim": 128, "mamba_d_ssm": 3072,
        "mamba_n_heads": 24, "mamba_d_head": 128, "mamba_n_groups": 1, "mamba_d_state": 256,
        "mamba_d_conv": 4, "mamba_expand": 2, "max_position_embeddings": 262144, "torch_dtype": "bfloat16",
    }  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = api.plan(str(path), **{**MEM, "vllm_version": "0.19.1"})
    specs = r.layout.stage_specs[0]
    assert len(specs) == 88  # both mixers of all 44 layers
    # state: conv (3, 3072 + 2 x 1 x 256 = 3584) + ssm (24, 128, 256), bf16 = 21504 + 1572864.
    mamba = specs["model.44.mixer"]
    assert mamba.real_page_size_bytes == 1_594_368
    # attention 2 KV heads x 256 x 2 = 1024 B/token: block 16 x cdiv(1594368, 16384) = 1568
    # for the attention group; 0.19's layer specs keep 16-token blocks until the planner
    # unifies the pages (see test_qwen3_next_gated_delta_net_alignment).
    assert specs["model.layers.0.attn"].block_size == 16
    assert attention_blocks(r) == {1568}
    assert mamba.page_size_bytes == 1568 * 1024
    assert sorted(n for _, n in groups(r)) == [44, 44]
    # A decoder layer's two mixers stay on the same PP stage.
    pp = api.plan(str(path), **{**MEM, "vllm_version": "0.19.1", "pp": 2})
    assert "model.44.mixer" in pp.layout.stage_specs[0] and "model.66.mixer" in pp.layout.stage_specs[1]


def test_granite_h_layer_types_and_head_size_rule(tmp_path):
    # Rule check on a Granite-4.0-H-shaped config: layer_types choose the mixer, attention
    # head size is hidden / heads (vLLM ignores head_dim here), Mamba2 I = expand x hidden.
    cfg = {
        "architectures": ["GraniteMoeHybridForCausalLM"], "hidden_size": 512, "num_hidden_layers": 8,
        "num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": 999,
        "layer_types": ["mamba", "mamba", "mamba", "attention"] * 2, "mamba_n_heads": 8,
        "mamba_d_head": 128, "mamba_n_groups": 1, "mamba_d_state": 128, "mamba_d_conv": 4,
        "mamba_expand": 2, "max_position_embeddings": 4096, "torch_dtype": "bfloat16",
    }  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = api.plan(str(path), **{**MEM, "vllm_version": "0.19.1"})
    specs = r.layout.stage_specs[0]
    attn = specs["model.layers.3.self_attn.attn"]
    assert attn.head_size == 512 // 8
    # state: conv (3, 1024 + 2 x 128) + ssm (8, 128, 128), bf16 = 7680 + 262144 = 269824 B;
    # attention 8 x 64 x 2 x 2 = 2048 B/token: block 16 x cdiv(269824, 32768) = 144.
    assert specs["model.layers.0.mixer"].real_page_size_bytes == 269824
    assert (attn.block_size, attention_blocks(r)) == (16, {144})  # 0.19: layer 16, group 144
    # 6 Mamba layers and 2 attention layers: group size 2 -> 3 Mamba groups + 1 attention group.
    assert sorted(n for _, n in groups(r)) == [2, 2, 2, 2]


@pytest.mark.parametrize(
    ("gpu", "version", "block"),
    [
        ("B200", "0.14", 128),  # CUTLASS MLA
        ("B200", "0.17", 64),  # FlashInfer MLA with DeepSeek's qk_nope_head_dim 128
        ("B200", "0.33", 32),  # FlashInfer MLA's preferred size
        ("A100-80GB", "0.17", 16),  # no FlashMLA before Hopper: Triton MLA
    ],
)
def test_mla_block_size_follows_the_gpu_architecture(gpu, version, block):
    # vLLM's CUDA platform picks the MLA backend by compute capability (platforms/cuda.py).
    r = api.plan("deepseek-v3", **{**MEM, "tp": 8, "gpu": gpu, "vllm_version": version})
    assert r.layout.stage_specs[0]["model.layers.0.self_attn.attn"].block_size == block


def test_checkpoint_with_a_kv_cache_scheme_gets_an_fp8_cache(tmp_path):
    # llm-compressor checkpoints (e.g. RedHatAI *-FP8-KV) carry quantization_config.kv_cache_scheme;
    # vLLM's Attention then stores K/V in fp8 (1 byte) even with --kv-cache-dtype auto.
    cfg = dict(presets.model_info("llama-3.1-8b")["config"])
    cfg["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = api.plan(str(path), **MEM)
    assert r.layout.stage_specs[0]["model.layers.0.self_attn.attn"].dtype == "fp8"
    assert r.num_blocks == 40 * 2**30 // (32 * 16 * 2 * 8 * 128 * 1)  # 40960
    explicit = api.plan(str(path), **{**MEM, "kv_cache_dtype": "bfloat16"})
    assert explicit.layout.stage_specs[0]["model.layers.0.self_attn.attn"].dtype == "bfloat16"


@pytest.mark.parametrize(("version", "block"), [("0.19.1", 272), ("0.33.0", 320)])
def test_qwen35_gated_delta_net_under_text_config(version, block):
    # Qwen3.5-397B-A17B at TP 8: attention 2 KV heads -> 1 per rank x head 256 -> 1024 B/token;
    # GDN conv (3, (2 x 16 x 128 + 64 x 128) / 8 = 1536) + temporal (64 / 8, 128, 128), bf16
    # = 9216 + 262144 = 271360 B.  0.19.1: 16 x cdiv(271360, 16384) = 272;
    # 0.33 (align mode, 64-token checkpoints): 64 x cdiv(271360, 65536) = 320.
    r = api.plan("qwen3.5-397b-a17b", **{**MEM, "tp": 8, "vllm_version": version})
    specs = r.layout.stage_specs[0]
    gdn = specs["language_model.model.layers.0.linear_attn"]
    assert gdn.real_page_size_bytes == 271360
    layer_block = 16 if version == "0.19.1" else block  # 0.19: the layer keeps 16, its group grows
    assert specs["language_model.model.layers.3.self_attn.attn"].block_size == layer_block
    assert attention_blocks(r) == {block}
    # 45 GDN layers and 15 full ones: groups of 15.
    assert sorted(n for _, n in groups(r)) == [15, 15, 15, 15]


def test_qwen35_ssm_dtype_and_release_floor(tmp_path, kvplan):
    cfg = dict(presets.model_info("qwen3.5-397b-a17b")["config"])
    cfg["text_config"] = {**cfg["text_config"], "mamba_ssm_dtype": "float32"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    # float32 temporal state: 9216 + 8 x 128 x 128 x 4 = 533504 B.
    r = api.plan(str(path), **{**MEM, "tp": 8})
    assert r.layout.stage_specs[0]["language_model.model.layers.0.linear_attn"].real_page_size_bytes == 533504
    out = kvplan("plan", "qwen3.5-397b-a17b", "--vllm-version", "0.16", "--kv-cache-memory", "1GiB")
    assert out.code == 2 and "arrived in 0.17.0" in out.stderr
