"""More recurrent-state hybrids: Zamba2, OLMo hybrid, Kimi-Linear, LFM2.

Each deriver mirrors how vLLM's model file builds its layers: which decoder
layer holds attention and which a recurrent state, the module path each cache
registers under, and the config keys (with the defaults the config class
fills in when config.json leaves them out).  State shapes are those of
``kvplan.model.families.mamba``.
"""

from __future__ import annotations

from typing import Any

from kvplan.errors import InputError
from kvplan.model.families.mamba import (
    ATTENTION_TYPES,
    MAMBA_TYPES,
    GatedDeltaNetLayer,
    KDALayer,
    Mamba2Layer,
    ShortConvLayer,
    _attention,
    _div,
    _dtype,
    _int,
)
from kvplan.model.layers import AttentionLayer, Layer, MLALayer
from kvplan.releases import Release


def _types(cfg: dict[str, Any], key: str, source: str, n: int) -> list[str] | None:
    types = cfg.get(key)
    if types is None:
        return None
    if not isinstance(types, list) or len(types) != n or not all(isinstance(t, str) for t in types):
        raise InputError(f"must list {n} layer types", source=source, field=key, value=types)
    return types


def zamba2(
    cfg: dict[str, Any], source: str, release: Release, *, prefix: str = "model.layers"
) -> list[Layer]:
    """Zamba2: a Mamba2 mixer in every layer, and in each "hybrid" layer a shared
    attention block with its own KV cache (vLLM's zamba2.py).

    The attention caches register as ``model.attn.{j}``: the shared blocks take
    the hybrid layers in turn (``num_mem_blocks`` of them) and block ``b``
    numbers its caches from ``b x (hybrids + blocks - 1) // blocks``.  The
    mixers register as ``{hybrids + i}.mixer``, with no model prefix.
    Attention is multi-head (KV heads = heads), head size ``2 x hidden /
    heads``, as Zamba2Config derives it.
    """
    n = _int(cfg, "num_hidden_layers", source)
    hidden = _int(cfg, "hidden_size", source)
    heads = _int(cfg, "num_attention_heads", source)
    types = _types(cfg, "layers_block_type", source, n)
    if types is None:
        # Zamba2Config's default pattern.
        types = ["mamba"] + (["mamba"] * 5 + ["hybrid"]) * 7 + ["mamba"] * 4 + ["hybrid"]
        types += ["mamba"] * 3 + ["hybrid"] + ["mamba"] * 2
        if len(types) != n:
            raise InputError(f"must list {n} layer types", source=source, field="layers_block_type")
    hybrids = [i for i, t in enumerate(types) if t == "hybrid"]
    blocks = _int(cfg, "num_mem_blocks", source, 1)
    head = _div(2 * hidden, heads, "Zamba2 attention hidden size")
    first = {b: b * (len(hybrids) + blocks - 1) // blocks for b in range(blocks)}
    attention: list[tuple[int, Layer]] = []
    for k, i in enumerate(hybrids):
        j = first[k % blocks] + k // blocks
        attention.append(
            (
                j,
                AttentionLayer(
                    f"model.attn.{j}", i, num_kv_heads=heads, head_size=head, num_attention_heads=heads
                ),
            )
        )
    dtype = _dtype(cfg)
    inner = _int(cfg, "mamba_expand", source, 2) * hidden
    mamba_heads = _int(cfg, "n_mamba_heads", source, 8)
    out: list[Layer] = [layer for _, layer in sorted(attention, key=lambda p: p[0])]
    for i, kind in enumerate(types):
        if kind not in ("hybrid", *MAMBA_TYPES):
            raise InputError(f"unknown layer type {kind!r}", source=source, field="layers_block_type")
        out.append(
            Mamba2Layer(
                f"{len(hybrids) + i}.mixer", i, intermediate=inner, n_groups=_int(cfg, "mamba_ngroups", source, 1),
                num_heads=mamba_heads, head_dim=_div(inner, mamba_heads, "Zamba2 Mamba intermediate size"),
                d_state=_int(cfg, "mamba_d_state", source, 64), d_conv=_int(cfg, "mamba_d_conv", source, 4),
                conv_dtype=dtype, ssm_dtype=dtype, spec_rows=release.behaviour.mamba2_spec_rows,
                fixed_checkpoint_alignment=release.behaviour.mamba2_checkpoint_alignment,
            )
        )  # fmt: skip
    return out


def olmo_hybrid(
    cfg: dict[str, Any], source: str, release: Release, *, prefix: str = "model.layers"
) -> list[Layer]:
    """OLMo hybrid: gated delta nets with full attention every 4th layer (``i % 4 ==
    3`` unless ``layer_types`` says otherwise; the last layer when that gives none).

    Attention head size is ``hidden / heads`` (``head_dim`` is ignored); the
    delta net's heads default to the attention heads, its key head size to
    ``0.75 x hidden / key heads`` and its value head size to twice that, as
    OlmoHybridConfig fills them in.
    """
    n = _int(cfg, "num_hidden_layers", source)
    types = _types(cfg, "layer_types", source, n)
    if types is None:
        types = ["full_attention" if i % 4 == 3 else "linear_attention" for i in range(n)]
        if "full_attention" not in types:
            types[-1] = "full_attention"
    heads = _int(cfg, "num_attention_heads", source)
    hidden = _int(cfg, "hidden_size", source)
    k_heads = _int(cfg, "linear_num_key_heads", source, heads)
    v_heads = _int(cfg, "linear_num_value_heads", source, heads)
    k_dim = _int(cfg, "linear_key_head_dim", source, int(0.75 * hidden / k_heads))
    v_dim = _int(cfg, "linear_value_head_dim", source, 2 * k_dim)
    dtype = _dtype(cfg)
    out: list[Layer] = []
    for i, kind in enumerate(types):
        if kind in ATTENTION_TYPES:
            out.append(_attention(cfg, source, f"{prefix}.{i}.self_attn.attn", i, head_key=None))
        elif kind in MAMBA_TYPES:
            out.append(
                GatedDeltaNetLayer(
                    f"{prefix}.{i}.linear_attn", i, mamba_type=release.behaviour.gdn_mamba_type, num_k_heads=k_heads,
                    num_v_heads=v_heads, head_k_dim=k_dim, head_v_dim=v_dim,
                    d_conv=_int(cfg, "linear_conv_kernel_dim", source, 4), state_dtype=dtype,
                )
            )  # fmt: skip
        else:
            raise InputError(f"unknown layer type {kind!r}", source=source, field="layer_types")
    return out


def kimi_linear(
    cfg: dict[str, Any], source: str, release: Release, *, prefix: str = "model.layers"
) -> list[Layer]:
    """Kimi-Linear: KDA on the layers ``linear_attn_config.kda_layers`` names (1-based),
    MLA (``kv_lora_rank + qk_rope_head_dim``, one latent head) on the others.

    Both register under the decoder layer's ``self_attn`` (the MLA cache under
    ``self_attn.attn`` before 0.27); the KDA recurrent state is float32.
    """
    n = _int(cfg, "num_hidden_layers", source)
    linear = cfg.get("linear_attn_config")
    if linear is not None and not isinstance(linear, dict):
        raise InputError("must be a mapping", source=source, field="linear_attn_config")
    kda_layers = (linear or {}).get("kda_layers") or []
    if not isinstance(kda_layers, list) or not all(isinstance(k, int) for k in kda_layers):
        raise InputError("must list layer numbers", source=source, field="linear_attn_config.kda_layers")
    behaviour = release.behaviour
    rank = _int(cfg, "kv_lora_rank", source)
    rope = _int(cfg, "qk_rope_head_dim", source)
    dtype = _dtype(cfg)
    out: list[Layer] = []
    for i in range(n):
        if i + 1 in kda_layers:
            assert linear is not None
            out.append(
                KDALayer(
                    f"{prefix}.{i}.self_attn", i, mamba_type=behaviour.gdn_mamba_type,
                    num_heads=_int(linear, "num_heads", source),
                    head_dim=_int(linear, "head_dim", source),
                    d_conv=_int(linear, "short_conv_kernel_size", source, 4), conv_dtype=dtype,
                    split_conv=behaviour.kda_split_conv, spec_rows=behaviour.kda_spec_rows,
                )
            )  # fmt: skip
        else:
            out.append(
                MLALayer(
                    f"{prefix}.{i}.{behaviour.kimi_mla_name}", i, kv_lora_rank=rank, qk_rope_head_dim=rope
                )
            )
    return out


def lfm2(
    cfg: dict[str, Any], source: str, release: Release, *, prefix: str = "model.layers", moe: bool = False
) -> list[Layer]:
    """LFM2 / LFM2-MoE: short convolutions, full attention where ``layer_types`` says
    ``full_attention`` (Lfm2Config derives the types from ``full_attn_idxs``).

    The conv state is ``conv_dim`` wide (LFM2) or ``hidden_size`` (LFM2-MoE),
    ``conv_L_cache - 1`` rows, in the model dtype; it registers under
    ``short_conv`` from 0.28 (``conv`` before).  Attention head size is
    ``hidden / heads``.
    """
    n = _int(cfg, "num_hidden_layers", source)
    types = _types(cfg, "layer_types", source, n)
    if types is None:
        if moe:
            raise InputError("is required (Lfm2MoeConfig has no default)", source=source, field="layer_types")
        full = cfg.get("full_attn_idxs")
        full = full if isinstance(full, list) else list(range(n))
        types = ["full_attention" if i in full else "conv" for i in range(n)]
    hidden = _int(cfg, "hidden_size", source)
    dim = hidden if moe else _int(cfg, "conv_dim", source, hidden)
    dtype = _dtype(cfg)
    behaviour = release.behaviour
    out: list[Layer] = []
    for i, kind in enumerate(types):
        if kind == "full_attention":
            out.append(_attention(cfg, source, f"{prefix}.{i}.self_attn.attn", i, head_key=None))
        else:
            out.append(
                ShortConvLayer(
                    f"{prefix}.{i}.{behaviour.lfm2_conv_name}", i, dim=dim,
                    l_cache=_int(cfg, "conv_L_cache", source, 3), conv_dtype=dtype,
                    spec_rows=behaviour.short_conv_spec_rows,
                )
            )  # fmt: skip
    return out
