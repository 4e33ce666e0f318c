"""Mamba and linear-attention layers: per-rank state shapes, as vLLM computes them.

State shapes follow vLLM's ``MambaStateShapeCalculator`` (per TP rank; the
orientation of a shape does not change its bytes):

* mamba1: conv ``(d_conv - 1, I / tp)``, ssm ``(I / tp, d_state)``;
* mamba2: ``G = n_groups`` plus ``tp - n_groups`` replicated groups when
  ``n_groups`` does not divide by tp; conv ``(K - 1, (I + 2 G N) / tp)``,
  ssm ``(H / tp, P, N)``;
* gated delta net: conv ``(K - 1, (2 nk dk + nv dv) / tp)``, temporal
  ``(nv / tp, dv, dk)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvplan.dtypes import canonical_dtype
from kvplan.errors import InputError
from kvplan.model.layers import AttentionLayer, Layer, MambaLayer

Shapes = tuple[tuple[int, ...], ...]


def _div(a: int, tp: int, what: str) -> int:
    if a % tp:
        raise InputError(f"{what} ({a}) is not divisible by tensor parallel size {tp}", field="tp", value=tp)
    return a // tp


@dataclass(frozen=True)
class Mamba1Layer(MambaLayer):
    """Mamba (v1) mixer: Jamba, Mamba, FalconMamba."""

    intermediate: int = 0
    d_state: int = 0
    d_conv: int = 0
    state_dtype: str = "bfloat16"

    def state(self, tp: int) -> tuple[Shapes, tuple[str, ...]]:
        inner = _div(self.intermediate, tp, "mamba intermediate size")
        return ((self.d_conv - 1, inner), (inner, self.d_state)), (self.state_dtype, self.state_dtype)


@dataclass(frozen=True)
class Mamba2Layer(MambaLayer):
    """Mamba2 mixer: Nemotron-H, Granite 4.0 H, Falcon-H1, Mamba2."""

    intermediate: int = 0
    n_groups: int = 1
    num_heads: int = 0
    head_dim: int = 0
    d_state: int = 0
    d_conv: int = 4
    conv_dtype: str = "bfloat16"
    ssm_dtype: str = "bfloat16"

    def state(self, tp: int) -> tuple[Shapes, tuple[str, ...]]:
        groups = self.n_groups + (0 if self.n_groups % tp == 0 else tp - self.n_groups)
        conv_dim = self.intermediate + 2 * groups * self.d_state
        shapes = (
            (self.d_conv - 1, _div(conv_dim, tp, "mamba2 conv dimension")),
            (_div(self.num_heads, tp, "mamba2 heads"), self.head_dim, self.d_state),
        )
        return shapes, (self.conv_dtype, self.ssm_dtype)


@dataclass(frozen=True)
class GatedDeltaNetLayer(MambaLayer):
    """Gated delta net linear attention (Qwen3-Next)."""

    num_k_heads: int = 0
    num_v_heads: int = 0
    head_k_dim: int = 0
    head_v_dim: int = 0
    d_conv: int = 4
    state_dtype: str = "bfloat16"
    ssm_dtype: str | None = None  # the temporal state's, when the config sets mamba_ssm_dtype

    def state(self, tp: int) -> tuple[Shapes, tuple[str, ...]]:
        conv_dim = 2 * self.num_k_heads * self.head_k_dim + self.num_v_heads * self.head_v_dim
        shapes = (
            (self.d_conv - 1, _div(conv_dim, tp, "gated delta net conv dimension")),
            (_div(self.num_v_heads, tp, "linear value heads"), self.head_v_dim, self.head_k_dim),
        )
        return shapes, (self.state_dtype, self.ssm_dtype or self.state_dtype)


def _int(cfg: dict[str, Any], key: str, source: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError("must be a positive whole number", source=source, field=key, value=value)
    return value


def _attention(
    cfg: dict[str, Any], source: str, name: str, i: int, head_key: str | None = "head_dim"
) -> AttentionLayer:
    heads = _int(cfg, "num_attention_heads", source)
    kv = _int(cfg, "num_key_value_heads", source, heads)
    hidden = _int(cfg, "hidden_size", source)
    head = _int(cfg, head_key, source) if head_key and cfg.get(head_key) else hidden // heads
    return AttentionLayer(name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads)


def _dtype(cfg: dict[str, Any]) -> str:
    from kvplan.dtypes import canonical_dtype, model_dtype

    raw = cfg.get("torch_dtype", cfg.get("dtype"))
    return model_dtype(canonical_dtype(raw) if raw else None)


def qwen3_next(
    cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "model.layers"
) -> list[Layer]:
    """Qwen3-Next and Qwen3.5: full attention at i % 4 == 3 (or per ``layer_types``),
    gated delta net elsewhere.  Qwen3.5's ``mamba_ssm_dtype`` sets the temporal state's dtype."""
    n = _int(cfg, "num_hidden_layers", source)
    types = cfg.get("layer_types") or [
        "linear_attention" if (i + 1) % 4 else "full_attention" for i in range(n)
    ]
    if not isinstance(types, list) or len(types) != n:
        raise InputError(f"must list {n} layer types", source=source, field="layer_types")
    dtype = _dtype(cfg)
    ssm = cfg.get("mamba_ssm_dtype")
    ssm_dtype = canonical_dtype(ssm, field="mamba_ssm_dtype", source=source) if ssm else None
    out: list[Layer] = []
    for i in range(n):
        if types[i] == "full_attention":
            out.append(_attention(cfg, source, f"{prefix}.{i}.self_attn.attn", i))
        else:
            out.append(
                GatedDeltaNetLayer(
                    f"{prefix}.{i}.linear_attn", i, mamba_type="gdn_attention",
                    num_k_heads=_int(cfg, "linear_num_key_heads", source),
                    num_v_heads=_int(cfg, "linear_num_value_heads", source),
                    head_k_dim=_int(cfg, "linear_key_head_dim", source),
                    head_v_dim=_int(cfg, "linear_value_head_dim", source),
                    d_conv=_int(cfg, "linear_conv_kernel_dim", source, 4),
                    state_dtype=dtype,
                    ssm_dtype=ssm_dtype,
                )
            )  # fmt: skip
    return out


def nemotron_h(
    cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "model.layers"
) -> list[Layer]:
    """Nemotron-H: ``hybrid_override_pattern`` (M mamba2, * attention, - / E no cache)."""
    pattern = cfg.get("hybrid_override_pattern")
    if not isinstance(pattern, str) or not pattern:
        raise InputError(
            "must be a pattern string such as 'M-M*'", source=source, field="hybrid_override_pattern"
        )
    dtype = _dtype(cfg)
    ssm = cfg.get("mamba_ssm_cache_dtype") or release.behaviour.nemotron_h_ssm_dtype or dtype
    heads, head_dim = _int(cfg, "mamba_num_heads", source), _int(cfg, "mamba_head_dim", source)
    out: list[Layer] = []
    for i, ch in enumerate(pattern):
        if ch == "*":
            key = "head_dim" if cfg.get("head_dim") else "attention_head_dim"
            out.append(_attention(cfg, source, f"{prefix}.{i}.mixer.attn", i, key))
        elif ch == "M":
            out.append(
                Mamba2Layer(
                    f"{prefix}.{i}.mixer", i, intermediate=heads * head_dim,
                    n_groups=_int(cfg, "n_groups", source, 1), num_heads=heads, head_dim=head_dim,
                    d_state=_int(cfg, "ssm_state_size", source), d_conv=_int(cfg, "conv_kernel", source, 4),
                    conv_dtype=dtype, ssm_dtype=ssm,
                )
            )  # fmt: skip
        elif ch not in "-E":
            raise InputError(f"unknown layer kind '{ch}'", source=source, field="hybrid_override_pattern")
    return out


def granite_h(cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "model.layers") -> list[Layer]:
    """Granite 4.0 H: ``layer_types`` of "mamba" / "attention"."""
    n = _int(cfg, "num_hidden_layers", source)
    types = cfg.get("layer_types")
    if not isinstance(types, list) or len(types) != n:
        raise InputError(f"must list {n} layer types", source=source, field="layer_types")
    dtype = _dtype(cfg)
    hidden = _int(cfg, "hidden_size", source)
    out: list[Layer] = []
    for i, kind in enumerate(types):
        if kind == "attention":
            out.append(_attention(cfg, source, f"{prefix}.{i}.self_attn.attn", i, head_key=None))
        else:
            out.append(
                Mamba2Layer(
                    f"{prefix}.{i}.mixer", i, intermediate=_int(cfg, "mamba_expand", source, 2) * hidden,
                    n_groups=_int(cfg, "mamba_n_groups", source, 1), num_heads=_int(cfg, "mamba_n_heads", source),
                    head_dim=_int(cfg, "mamba_d_head", source), d_state=_int(cfg, "mamba_d_state", source),
                    d_conv=_int(cfg, "mamba_d_conv", source, 4), conv_dtype=dtype, ssm_dtype=dtype,
                )
            )  # fmt: skip
    return out


def jamba(cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "model.layers") -> list[Layer]:
    """Jamba: attention where ``i % attn_layer_period == attn_layer_offset``, Mamba (v1) elsewhere."""
    n = _int(cfg, "num_hidden_layers", source)
    period, offset = _int(cfg, "attn_layer_period", source, 8), cfg.get("attn_layer_offset", 4)
    dtype = _dtype(cfg)
    inner = _int(cfg, "mamba_expand", source, 2) * _int(cfg, "hidden_size", source)
    out: list[Layer] = []
    for i in range(n):
        if i % period == offset:
            out.append(_attention(cfg, source, f"{prefix}.{i}.attn", i, head_key=None))
        else:
            out.append(
                Mamba1Layer(
                    f"{prefix}.{i}.mixer", i, mamba_type="mamba1", intermediate=inner,
                    d_state=_int(cfg, "mamba_d_state", source, 16), d_conv=_int(cfg, "mamba_d_conv", source, 4),
                    state_dtype=dtype,
                )
            )  # fmt: skip
    return out


def falcon_h1(cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "model.layers") -> list[Layer]:
    """Falcon-H1: every decoder layer holds attention AND a Mamba2 mixer (``model.{N + i}.mixer``)."""
    n = _int(cfg, "num_hidden_layers", source)
    hidden = _int(cfg, "hidden_size", source)
    dtype = _dtype(cfg)
    inner = cfg.get("mamba_d_ssm") or int(cfg.get("mamba_expand", 2) * hidden)
    out: list[Layer] = []
    for i in range(n):
        out.append(_attention(cfg, source, f"{prefix}.{i}.attn", i))
        out.append(
            Mamba2Layer(
                f"model.{n + i}.mixer", i, intermediate=int(inner),
                n_groups=_int(cfg, "mamba_n_groups", source, 1), num_heads=_int(cfg, "mamba_n_heads", source),
                head_dim=_int(cfg, "mamba_d_head", source), d_state=_int(cfg, "mamba_d_state", source),
                d_conv=_int(cfg, "mamba_d_conv", source, 4), conv_dtype=dtype, ssm_dtype=dtype,
            )
        )  # fmt: skip
    return out


def mamba1_only(
    cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "backbone.layers"
) -> list[Layer]:
    """Pure Mamba (v1): a state per layer, no attention."""
    n = _int(cfg, "num_hidden_layers", source)
    dtype = _dtype(cfg)
    return [
        Mamba1Layer(
            f"{prefix}.{i}.mixer", i, mamba_type="mamba1", intermediate=_int(cfg, "intermediate_size", source),
            d_state=_int(cfg, "state_size", source), d_conv=_int(cfg, "conv_kernel", source, 4), state_dtype=dtype,
        )
        for i in range(n)
    ]  # fmt: skip


def mamba2_only(
    cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "backbone.layers"
) -> list[Layer]:
    """Pure Mamba2 (Mamba-Codestral): a state per layer, no attention."""
    n = _int(cfg, "num_hidden_layers", source)
    hidden = _int(cfg, "hidden_size", source)
    dtype = _dtype(cfg)
    return [
        Mamba2Layer(
            f"{prefix}.{i}.mixer", i, intermediate=_int(cfg, "expand", source, 2) * hidden,
            n_groups=_int(cfg, "n_groups", source, 1), num_heads=_int(cfg, "num_heads", source),
            head_dim=_int(cfg, "head_dim", source), d_state=_int(cfg, "state_size", source),
            d_conv=_int(cfg, "conv_kernel", source, 4), conv_dtype=dtype, ssm_dtype=dtype,
        )
        for i in range(n)
    ]  # fmt: skip
