"""Writes tests/parity/scenarios.json, the corpus both vLLM and kvplan plan.

The corpus is generated so that the arithmetic behind every number is visible
here; edit this file and rerun it rather than editing the JSON by hand:

    python tools/vllm_parity/make_scenarios.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GiB = 1 << 30
MiB = 1 << 20
OUT = Path(__file__).resolve().parents[2] / "tests" / "parity" / "scenarios.json"


def attn(
    kind: str = "full",
    heads: int = 8,
    head: int = 128,
    dtype: str = "bfloat16",
    block: int = 16,
    **extra: Any,
) -> dict[str, Any]:
    layer = {"type": kind, "block_size": block, "num_kv_heads": heads, "head_size": head, "dtype": dtype}
    layer.update(extra)
    return layer


def dense_layers(n: int, start: int = 0, **kw: Any) -> dict[str, dict[str, Any]]:
    return {f"model.layers.{i}.self_attn.attn": attn(**kw) for i in range(start, start + n)}


def split(layers: dict[str, Any], sizes: list[int]) -> list[dict[str, Any]]:
    items = list(layers.items())
    out, pos = [], 0
    for size in sizes:
        out.append(dict(items[pos : pos + size]))
        pos += size
    assert pos == len(items)
    return out


def scenario(
    sid: str,
    description: str,
    workers: list[dict[str, Any]],
    *,
    max_model_len: int = 131072,
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int = 256,
    override: int | None = None,
    disable_hybrid: bool = False,
    dcp: int = 1,
    **optional: Any,
) -> dict[str, Any]:
    s = {
        "id": sid,
        "description": description,
        "max_model_len": max_model_len,
        "max_num_batched_tokens": max_num_batched_tokens,
        "max_num_seqs": max_num_seqs,
        "num_gpu_blocks_override": override,
        "disable_hybrid_kv_cache_manager": disable_hybrid,
        "dcp": dcp,
        "workers": workers,
    }
    s.update(optional)
    return s


def w(mem: int, layers: dict[str, Any]) -> dict[str, Any]:
    return {"available_memory": mem, "layers": layers}


def build() -> list[dict[str, Any]]:
    S: list[dict[str, Any]] = []
    llama = dense_layers(32)  # 65,536 B/page/layer; 2 MiB per block over 32 layers
    llama_tp2 = dense_layers(32, heads=4)

    # ------------------------------------------------------------ dense
    S.append(
        scenario(
            "dense-llama31-8b-tp1",
            "Llama-3.1-8B, TP1: 32 layers x 8 KV heads x 128 x bf16, block 16 -> 65,536 B per "
            "layer page, 2 MiB per block; 20 GiB / 2 MiB = 10,240 blocks.",
            [w(20 * GiB, llama)],
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-tp2",
            "Llama-3.1-8B, TP2: 4 KV heads per rank -> 1 MiB per block; 20 GiB -> 20,480 blocks.",
            [w(20 * GiB, llama_tp2)],
            tp=2,
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-override",
            "Llama-3.1-8B TP1, 20 GiB (10,240 blocks) with num_gpu_blocks_override=4096.",
            [w(20 * GiB, llama)],
            override=4096,
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-override-above-memory",
            "Llama-3.1-8B TP1, 20 GiB (10,240 blocks) with num_gpu_blocks_override=16384, more "
            "than the memory holds.",
            [w(20 * GiB, llama)],
            override=16384,
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-too-long",
            "Llama-3.1-8B TP1, 8 GiB: 131,072 tokens need 8,192 blocks x 2 MiB = 16 GiB, so the "
            "fit check refuses; 8 GiB holds 4,096 blocks = 65,536 tokens.",
            [w(8 * GiB, llama)],
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-exact-fit",
            "Llama-3.1-8B TP1, exactly 16 GiB = 17,179,869,184 B, the bytes 131,072 tokens need "
            "(8,192 blocks x 2 MiB).",
            [w(16 * GiB, llama)],
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-exact-fit-minus-one-byte",
            "As dense-llama31-8b-exact-fit with one byte less (17,179,869,183 B).",
            [w(16 * GiB - 1, llama)],
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-exact-fit-plus-null-block",
            "As dense-llama31-8b-exact-fit plus one block (2 MiB) for the BlockPool null block.",
            [w(16 * GiB + 2 * MiB, llama)],
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-autofit",
            "Llama-3.1-8B TP1, max_model_len=-1 (auto-fit) with a model maximum of 131,072 and "
            "12 GiB: 6,144 blocks = 98,304 tokens.",
            [w(12 * GiB, llama)],
            max_model_len=-1,
            model_max_model_len=131072,
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-autofit-fits",
            "Llama-3.1-8B TP1, auto-fit with 20 GiB: the model maximum 131,072 already fits.",
            [w(20 * GiB, llama)],
            max_model_len=-1,
            model_max_model_len=131072,
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-tp2-dcp2",
            "Llama-3.1-8B TP2 with decode context parallel 2: 4 KV heads per rank, 20 GiB -> "
            "20,480 blocks; the logged token count is multiplied by the CP size.",
            [w(20 * GiB, llama_tp2)],
            tp=2,
            dcp=2,
        )
    )
    S.append(
        scenario(
            "dense-llama31-8b-bs32-fp8",
            "Llama-3.1-8B TP1 with block 32 and an fp8 cache: 2 x 32 x 8 x 128 x 1 = 65,536 B "
            "per layer page; 20 GiB -> 10,240 blocks of 32 tokens.",
            [w(20 * GiB, dense_layers(32, block=32, dtype="fp8"))],
            cache_dtype="fp8",
        )
    )

    # ------------------------------------------------------------ pipeline
    layers30 = dense_layers(30)
    stages = split(layers30, [7, 8, 8, 7])
    mems = [10 * GiB, 9 * GiB, 9 * GiB + 512 * MiB, 11 * GiB]
    S.append(
        scenario(
            "pp4-uneven-30-layers",
            "30 Llama-style layers (8 KV heads x 128 x bf16) split 7,8,8,7 over PP=4 with 10, 9, "
            "9.5 and 11 GiB: per stage 23,405 / 18,432 / 19,456 / 25,746 blocks; min 18,432.",
            [w(m, s) for m, s in zip(mems, stages, strict=True)],
        )
    )

    # ------------------------------------------------------------ uniform type
    heads_pattern = [8, 8, 4, 2, 1, 8]
    deci = {f"model.layers.{i}.self_attn.attn": attn(heads=heads_pattern[i % 6]) for i in range(24)}
    S.append(
        scenario(
            "uniform-type-deci-heads",
            "DeciLM / Nemotron-51B style: 24 full-attention layers whose KV heads cycle "
            "8,8,4,2,1,8 (head 128, bf16, block 16); page 8,192 B per head; summed page "
            "1,015,808 B per block; 20 GiB.",
            [w(20 * GiB, deci)],
            architectures=["DeciLMForCausalLM"],
        )
    )
    d0, d1 = split(deci, [12, 12])
    S.append(
        scenario(
            "uniform-type-deci-heads-pp2",
            "The uniform-type-deci-heads layers split 12/12 over PP=2 with 12 GiB and 10 GiB.",
            [w(12 * GiB, d0), w(10 * GiB, d1)],
            architectures=["DeciLMForCausalLM"],
        )
    )
    S.append(
        scenario(
            "uniform-type-deci-heads-pp2-same-memory",
            "The uniform-type-deci-heads layers split 12/12 over PP=2 with 10 GiB on both stages.",
            [w(10 * GiB, d0), w(10 * GiB, d1)],
            architectures=["DeciLMForCausalLM"],
        )
    )
    mixed_head = {
        f"model.layers.{i}.self_attn.attn": attn(head=128 if i % 2 == 0 else 256) for i in range(16)
    }
    S.append(
        scenario(
            "uniform-type-mixed-head-size",
            "16 full-attention layers, 8 KV heads, head size alternating 128 / 256 (bf16): pages "
            "65,536 and 131,072 B; 20 GiB.",
            [w(20 * GiB, mixed_head)],
        )
    )

    # ------------------------------------------------------------ sliding window
    def gemma3(heads: int) -> dict[str, Any]:
        return {
            f"model.layers.{i}.self_attn.attn": attn() | {"num_kv_heads": heads}
            if (i + 1) % 6 == 0
            else attn("sliding_window", heads=heads, sliding_window=1024)
            for i in range(62)
        }

    g_tp2 = gemma3(8)
    S.append(
        scenario(
            "hybrid-gemma3-27b-tp2",
            "Gemma-3-27B-like at TP2: 62 layers, layer i full when (i+1)%6==0 (10 full, 52 "
            "sliding window 1024), 16 KV heads / TP2 = 8, head 128, bf16, block 16; 40 GiB.",
            [w(40 * GiB, g_tp2)],
            tp=2,
            architectures=["Gemma3ForCausalLM"],
        )
    )
    S.append(
        scenario(
            "hybrid-gemma3-27b-tp2-disable-hybrid",
            "hybrid-gemma3-27b-tp2 with disable_hybrid_kv_cache_manager: sliding layers become "
            "full attention with their window recorded; 40 GiB.",
            [w(40 * GiB, g_tp2)],
            tp=2,
            disable_hybrid=True,
            architectures=["Gemma3ForCausalLM"],
        )
    )
    S.append(
        scenario(
            "hybrid-gemma3-27b-tp1",
            "Gemma-3-27B-like at TP1 (16 KV heads per rank), 40 GiB.",
            [w(40 * GiB, gemma3(16))],
            architectures=["Gemma3ForCausalLM"],
        )
    )
    g0, g1 = split(g_tp2, [31, 31])
    S.append(
        scenario(
            "hybrid-gemma3-27b-tp2-pp2",
            "hybrid-gemma3-27b-tp2 layers split 31/31 over PP=2 (stage 0 has 5 full layers, "
            "stage 1 has 5) with 14 GiB and 16 GiB.",
            [w(14 * GiB, g0), w(16 * GiB, g1)],
            tp=2,
            architectures=["Gemma3ForCausalLM"],
        )
    )
    S.append(
        scenario(
            "hybrid-gemma3-27b-tp2-too-long",
            "hybrid-gemma3-27b-tp2 with only 2 GiB: 131,072 tokens on the 10 full layers alone "
            "need 2.5 GiB, so the fit check refuses.",
            [w(2 * GiB, g_tp2)],
            tp=2,
            architectures=["Gemma3ForCausalLM"],
        )
    )
    S.append(
        scenario(
            "hybrid-gemma3-27b-tp2-autofit",
            "hybrid-gemma3-27b-tp2, auto-fit (model maximum 131,072) with 2 GiB.",
            [w(2 * GiB, g_tp2)],
            tp=2,
            max_model_len=-1,
            model_max_model_len=131072,
            architectures=["Gemma3ForCausalLM"],
        )
    )

    oss = {
        f"model.layers.{i}.self_attn.attn": attn("sliding_window", heads=1, head=64, sliding_window=128)
        if i % 2 == 0
        else attn(heads=1, head=64)
        for i in range(36)
    }
    S.append(
        scenario(
            "hybrid-gpt-oss-120b-tp8",
            "gpt-oss-120b-like at TP8: 36 layers alternating sliding window 128 (even layers) and "
            "full (odd), 8 KV heads / TP8 = 1, head 64, bf16, block 16 -> 4,096 B pages; 30 GiB.",
            [w(30 * GiB, oss)],
            tp=8,
            architectures=["GptOssForCausalLM"],
        )
    )
    S.append(
        scenario(
            "hybrid-gpt-oss-120b-tp8-disable-hybrid",
            "hybrid-gpt-oss-120b-tp8 with disable_hybrid_kv_cache_manager.",
            [w(30 * GiB, oss)],
            tp=8,
            disable_hybrid=True,
            architectures=["GptOssForCausalLM"],
        )
    )

    # ------------------------------------------------------------ chunked local
    scout = {
        f"model.layers.{i}.self_attn.attn": attn()
        if (i + 1) % 4 == 0
        else attn("chunked_local", attention_chunk_size=8192)
        for i in range(48)
    }
    S.append(
        scenario(
            "chunked-llama4-scout",
            "Llama-4-Scout-like: 48 layers, layer i full when (i+1)%4==0 (12 full), the other 36 "
            "chunked local attention with chunk 8192; 8 KV heads x 128 x bf16, block 16; 40 GiB.",
            [w(40 * GiB, scout)],
            architectures=["Llama4ForConditionalGeneration"],
        )
    )
    S.append(
        scenario(
            "chunked-llama4-scout-disable-hybrid",
            "chunked-llama4-scout with disable_hybrid_kv_cache_manager.",
            [w(40 * GiB, scout)],
            disable_hybrid=True,
            architectures=["Llama4ForConditionalGeneration"],
        )
    )

    # ------------------------------------------------------------ MLA
    dsv3 = {
        f"model.layers.{i}.self_attn.attn": attn("mla", heads=1, head=576, block=64, cache_dtype_str="auto")
        for i in range(61)
    }
    S.append(
        scenario(
            "mla-deepseek-v3",
            "DeepSeek-V3-like: 61 MLA layers, one latent head of 512 + 64 = 576, bf16, block 64 -> "
            "73,728 B per layer page; 40 GiB; max_model_len 163,840.",
            [w(40 * GiB, dsv3)],
            max_model_len=163840,
            architectures=["DeepseekV3ForCausalLM"],
        )
    )
    m0, m1 = split(dsv3, [31, 30])
    S.append(
        scenario(
            "mla-deepseek-v3-pp2",
            "mla-deepseek-v3 split 31/30 over PP=2 (vLLM's default split of 61 layers) with "
            "30 GiB and 32 GiB.",
            [w(30 * GiB, m0), w(32 * GiB, m1)],
            max_model_len=163840,
            architectures=["DeepseekV3ForCausalLM"],
        )
    )
    dsv3_fp8 = {
        f"model.layers.{i}.self_attn.attn": attn(
            "mla", heads=1, head=576, block=64, dtype="fp8", cache_dtype_str="fp8"
        )
        for i in range(61)
    }
    S.append(
        scenario(
            "mla-deepseek-v3-fp8",
            "mla-deepseek-v3 with an fp8 (e4m3) cache: 64 x 576 x 1 = 36,864 B per layer page.",
            [w(40 * GiB, dsv3_fp8)],
            max_model_len=163840,
            cache_dtype="fp8",
            architectures=["DeepseekV3ForCausalLM"],
        )
    )

    # ------------------------------------------------------------ Mamba hybrids
    # Nemotron-H-8B-like Mamba2 layer at TP1: 128 heads x head_dim 64 (intermediate 8192),
    # n_groups 8, d_state 128, conv kernel 4.
    #   conv state: (conv_kernel - 1, intermediate + 2 * n_groups * d_state) = (3, 10240) bf16
    #               = 61,440 B
    #   ssm state:  (heads, head_dim, d_state) = (128, 64, 128) bf16 = 2,097,152 B
    #   mamba page: 2,158,592 B.
    # Attention layers: 8 KV heads x 128 x bf16 = 4,096 B per token.  vLLM's platform step
    # picks the attention block size as the smallest multiple of 16 whose page is at least
    # the mamba page: 16 * cdiv(2,158,592, 16 * 4,096) = 16 * 33 = 528 tokens -> 2,162,688 B,
    # and pads the mamba page to the same 2,162,688 B.
    mamba_shapes = [[3, 10240], [128, 64, 128]]
    attn_idx = {6, 13, 20, 27}

    def nemotron_h(block: int, padded: int | None, max_len: int) -> dict[str, Any]:
        layers: dict[str, Any] = {}
        for i in range(28):
            if i in attn_idx:
                layers[f"model.layers.{i}.mixer.attn"] = attn(block=block)
            else:
                m = {
                    "type": "mamba",
                    "block_size": max_len,
                    "shapes": mamba_shapes,
                    "dtypes": ["bfloat16", "bfloat16"],
                    "mamba_type": "mamba2",
                }
                if padded is not None:
                    m["page_size_padded"] = padded
                layers[f"model.layers.{i}.mixer"] = m
        return layers

    S.append(
        scenario(
            "mamba-nemotron-h-aligned",
            "Nemotron-H-8B-like: 28 layers, attention at 6,13,20,27, Mamba2 elsewhere (24). Mamba "
            "state (3,10240)+(128,64,128) bf16 = 2,158,592 B; attention block size "
            "16*cdiv(2,158,592, 16*4,096) = 528 -> 2,162,688 B page, mamba page_size_padded to "
            "the same; mamba block_size = max_model_len (no prefix caching); 20 GiB.",
            [w(20 * GiB, nemotron_h(528, 2162688, 131072))],
            enable_prefix_caching=False,
            architectures=["NemotronHForCausalLM"],
        )
    )
    nh = nemotron_h(528, 2162688, 131072)
    n0, n1 = split(nh, [14, 14])
    S.append(
        scenario(
            "mamba-nemotron-h-aligned-pp2",
            "mamba-nemotron-h-aligned split 14/14 over PP=2 (2 attention + 12 mamba layers each) "
            "with 10 GiB and 12 GiB.",
            [w(10 * GiB, n0), w(12 * GiB, n1)],
            enable_prefix_caching=False,
            architectures=["NemotronHForCausalLM"],
        )
    )
    S.append(
        scenario(
            "mamba-nemotron-h-unaligned",
            "mamba-nemotron-h-aligned without the platform alignment: attention block 16 (65,536 B "
            "page) and unpadded mamba pages of 2,158,592 B, so page sizes differ.",
            [w(20 * GiB, nemotron_h(16, None, 131072))],
            enable_prefix_caching=False,
            architectures=["NemotronHForCausalLM"],
        )
    )

    # ------------------------------------------------------------ attention free
    S.append(
        scenario(
            "attention-free",
            "A model with no KV cache layers at all (e.g. an attention-free embedding model).",
            [w(20 * GiB, {})],
        )
    )
    return S


def main() -> None:
    corpus = {"schema": 1, "scenarios": build()}
    ids = [s["id"] for s in corpus["scenarios"]]
    assert len(ids) == len(set(ids)), "duplicate scenario ids"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(corpus, indent=1) + "\n")
    print(f"wrote {len(ids)} scenarios to {OUT}")


if __name__ == "__main__":
    main()
