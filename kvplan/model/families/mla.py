"""Multi-head latent attention (DeepSeek V2/V3/R1, Kimi K2/K2.5, GLM-4.7-Flash,
Mistral Large 3, AXK1, Pangu Ultra MoE, Sarvam-MLA, LongCat-Flash) and
DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5).

The DeepSeek-V2 decoder layer (vLLM's ``deepseek_v2.py``, which Mistral
Large 3, GLM-4.7-Flash and AXK1 reuse) picks one of three attentions:

* plain GQA (``DeepseekAttention``) when ``model_type`` is ``deepseek`` or
  both ``qk_nope_head_dim`` and ``qk_rope_head_dim`` are 0: head size
  ``hidden_size / num_attention_heads``, ``num_key_value_heads`` KV heads;
* MLA when vLLM's ``use_mla`` holds (the text ``model_type`` is one of its
  DeepSeek-style MLA types and ``kv_lora_rank`` is set): one latent row of
  ``kv_lora_rank + qk_rope_head_dim``, the same on every TP rank;
* MHA otherwise (``DeepseekV2Attention``): every head a KV head, head size
  ``qk_nope_head_dim + qk_rope_head_dim``.

With ``index_topk`` in the config the MLA is sparse (DSA): layers that keep
the lightning indexer get its key cache as a separate layer
(``...self_attn.indexer.k_cache``), ``index_head_dim + index_head_dim / 128 * 4``
uint8 bytes a token.  From vLLM 0.21 ``index_topk_freq`` / ``index_topk_pattern``
let layers skip the indexer; MTP layers always keep one.
"""

from __future__ import annotations

from typing import Any

from kvplan.errors import InputError
from kvplan.model.config import Config, value
from kvplan.model.layers import AttentionLayer, Layer, MLAIndexerLayer, MLALayer
from kvplan.releases import Release

# The text model types vLLM's ModelConfig.use_mla accepts (is_deepseek_mla in
# transformers_utils/model_arch_config_convertor.py, 0.33.0) for the
# DeepSeek-V2-style decoders kvplan derives.
MLA_MODEL_TYPES = frozenset(
    {
        "axk1",
        "deepseek_v2",
        "deepseek_v3",
        "deepseek_v32",
        "deepseek_mtp",
        "glm_moe_dsa",
        "glm4_moe_lite",
        "glm4_moe_lite_mtp",
        "kimi_k2",
        "longcat_flash",
        "pangu_ultra_moe",
        "pangu_ultra_moe_mtp",
    }
)

# What transformers' config classes fill in when a config.json omits an MLA key.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "deepseek_v2": {"kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64},
    "deepseek_v3": {"kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64},
    "deepseek_v32": {"kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64},
    "kimi_k2": {"kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64},
    "glm4_moe_lite": {"kv_lora_rank": 512, "qk_nope_head_dim": 192, "qk_rope_head_dim": 64},
    "glm_moe_dsa": {"kv_lora_rank": 512, "qk_nope_head_dim": 192, "qk_rope_head_dim": 64},
}


def model_type(cfg: Config) -> str:
    """The text config's model_type; DeepSeek-V2's config class when the config names none
    (a wrapper's text config built from DeepseekV2Config, as DeepSeek-VL2's is)."""
    return str(cfg.get("model_type") or "deepseek_v2")


def _key(cfg: Config, key: str, source: str) -> int | None:
    """An MLA dimension: the config's value, else the config class default; None when null."""
    if key in cfg:
        raw = cfg[key]
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise InputError("must be a whole number", source=source, field=key, value=raw)
        return raw
    default = _DEFAULTS.get(model_type(cfg), {}).get(key)
    if default is None:
        raise InputError("required key is missing", source=source, field=key)
    return int(default)


def _sparse_fields(cfg: Config, source: str, release: Release) -> tuple[int | None, int] | None:
    """(top-k buffer width on the spec, indexer row bytes) for a DSA config, else None."""
    if "index_topk" not in cfg:
        return None
    topk = value(cfg, "index_topk", source)
    head = value(cfg, "index_head_dim", source, default=128)
    width = topk if release.behaviour.dsa_topk_buffer_width else None
    return width, head + head // 128 * 4


def skips_indexer(cfg: Config, source: str, release: Release, i: int) -> bool:
    """Whether decoder layer ``i`` runs without the lightning indexer (vLLM 0.21+)."""
    if not release.behaviour.dsa_skip_topk:
        return False
    pattern = cfg.get("index_topk_pattern")
    if pattern is not None:
        if not isinstance(pattern, str | list):
            raise InputError("must be a string of F/S letters", source=source, field="index_topk_pattern")
        return 0 <= i < len(pattern) and pattern[i] == "S"
    freq = value(cfg, "index_topk_freq", source, default=1)
    offset = cfg.get("index_skip_topk_offset", 2)
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise InputError(
            "must be a whole number", source=source, field="index_skip_topk_offset", value=offset
        )
    return bool(max(i - offset + 1, 0) % freq)


def mla_layers(
    cfg: Config, source: str, release: Release, name: str, i: int, *, mtp: bool = False
) -> list[Layer]:
    """One MLA attention at module path ``name`` (``....self_attn``), with the
    indexer's key cache first when the layer keeps one (vLLM registers it first)."""
    rank = _key(cfg, "kv_lora_rank", source)
    rope = _key(cfg, "qk_rope_head_dim", source)
    if rank is None or rope is None:
        raise InputError("MLA needs kv_lora_rank and qk_rope_head_dim", source=source, field="kv_lora_rank")
    sparse = _sparse_fields(cfg, source, release)
    if sparse is None:
        return [MLALayer(f"{name}.attn", i, kv_lora_rank=rank, qk_rope_head_dim=rope)]
    width, indexer_bytes = sparse
    has_indexer = mtp or not skips_indexer(cfg, source, release, i)
    leader = has_indexer and release.behaviour.dsa_index_roles
    out: list[Layer] = []
    if has_indexer:
        out.append(MLAIndexerLayer(f"{name}.indexer.k_cache", i, head_size=indexer_bytes))
    out.append(
        MLALayer(
            f"{name}.attn",
            i,
            kv_lora_rank=rank,
            qk_rope_head_dim=rope,
            sparse=True,
            topk_buffer_width=width,
            index_group_leader=leader,
        )
    )
    return out


def use_mla(cfg: Config, source: str) -> bool:
    """vLLM's ``ModelConfig.use_mla`` for a DeepSeek-style text config."""
    return model_type(cfg) in MLA_MODEL_TYPES and _key_or_none(cfg, "kv_lora_rank", source) is not None


def _key_or_none(cfg: Config, key: str, source: str) -> int | None:
    try:
        return _key(cfg, key, source)
    except InputError:
        return None


def decoder_layer(cfg: Config, source: str, release: Release, name: str, i: int) -> list[Layer]:
    """The KV layers of one DeepSeek-V2-style decoder layer (``name`` = ``...layers.{i}.self_attn``)."""
    heads = value(cfg, "num_attention_heads", source)
    nope = _key_or_none(cfg, "qk_nope_head_dim", source) or 0
    rope = _key_or_none(cfg, "qk_rope_head_dim", source) or 0
    if cfg.get("model_type") == "deepseek" or (nope == 0 and rope == 0):
        if cfg.get("rswa_window") is not None:
            raise InputError(
                "the RSWA attention spec (rswa_window) is not one kvplan derives",
                source=source,
                field="rswa_window",
            )
        hidden = value(cfg, "hidden_size", source)
        kv = value(cfg, "num_key_value_heads", source, default=heads)
        if hidden % heads:
            raise InputError(
                f"hidden_size ({hidden}) is not divisible by num_attention_heads ({heads})",
                source=source,
                field="hidden_size",
            )
        return [
            AttentionLayer(
                f"{name}.attn", i, num_kv_heads=kv, head_size=hidden // heads, num_attention_heads=heads
            )
        ]
    if use_mla(cfg, source):
        return mla_layers(cfg, source, release, name, i)
    # Multi-head attention over the decompressed keys: one KV head per head.
    return [
        AttentionLayer(
            f"{name}.attn", i, num_kv_heads=heads, head_size=nope + rope, num_attention_heads=heads
        )
    ]


def deepseek(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """DeepSeek V2/V3/V3.2 and the decoders built on their layer (Kimi K2, GLM-4.7-Flash,
    GLM-5, Mistral Large 3, AXK1): one attention per decoder layer."""
    n = value(cfg, "num_hidden_layers", source)
    out: list[Layer] = []
    for i in range(n):
        out += decoder_layer(cfg, source, release, f"{prefix}.{i}.self_attn", i)
    return out


def always_mla(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Decoders whose attention is MLA whatever ``use_mla`` says (Pangu Ultra MoE, Sarvam-MLA)."""
    n = value(cfg, "num_hidden_layers", source)
    out: list[Layer] = []
    for i in range(n):
        out += mla_layers(cfg, source, release, f"{prefix}.{i}.self_attn", i)
    return out


def longcat(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """LongCat-Flash: two MLA attentions in every decoder layer (``self_attn.0`` and
    ``self_attn.1``), so two latent caches a layer.

    vLLM builds ``num_layers`` decoder layers from 0.32; before, it builds
    ``num_hidden_layers`` of them, which transformers' LongcatFlashConfig
    gives as ``2 x num_layers`` when a config.json omits it.
    """
    if release.behaviour.longcat_num_layers:
        n = value(cfg, "num_layers", source)
    else:
        n = value(cfg, "num_hidden_layers", source, default=None) or 2 * value(cfg, "num_layers", source)
    out: list[Layer] = []
    for i in range(n):
        for j in (0, 1):
            out += mla_layers(cfg, source, release, f"{prefix}.{i}.self_attn.{j}", i)
    return out
