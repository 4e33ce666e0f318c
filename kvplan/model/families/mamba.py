"""Mamba and linear-attention layers: per-rank state shapes, as vLLM computes them.

State shapes follow vLLM's ``MambaStateShapeCalculator`` (per TP rank, conv
rows first as vLLM's default layout has them; ``s`` is the number of
speculative tokens where the release gives the conv state a row per draft
token):

* mamba1: conv ``(d_conv - 1, I / tp)``, ssm ``(I / tp, d_state)``;
* mamba2: ``G = n_groups`` plus ``tp - n_groups`` replicated groups when
  ``n_groups`` does not divide by tp; conv ``(K - 1 + s, (I + 2 G N) / tp)``,
  ssm ``(H / tp, P, N)`` (``s`` from 0.17);
* gated delta net: conv ``(K - 1 + s, (2 nk dk + nv dv) / tp)``, temporal
  ``(nv / tp, dv, dk)``;
* KDA (Kimi delta attention): conv ``(K - 1 + s, 3 H d / tp)`` and recurrent
  ``(H / tp, d, d)``, float32 unless the cache's SSM dtype says otherwise
  (0.23+; ``s`` from 0.27); before 0.23 three conv states ``(K - 1, H d / tp)``
  (q, k, v) and the recurrent state;
* short conv: conv ``(L - 1 + s, dim / tp)`` (``s`` from 0.29).
"""

from __future__ import annotations

from typing import Any

from kvplan.dtypes import canonical_dtype
from kvplan.errors import InputError, PlannerRefusal
from kvplan.model.layers import AttentionLayer, Layer, MambaLayer
from kvplan.records import record

Shapes = tuple[tuple[int, ...], ...]


def _div(a: int, tp: int, what: str) -> int:
    if a % tp:
        raise InputError(f"{what} ({a}) is not divisible by tensor parallel size {tp}", field="tp", value=tp)
    return a // tp


@record(frozen=True)
class Mamba1Layer(MambaLayer):
    """Mamba (v1) mixer: Jamba, Mamba, FalconMamba."""

    intermediate: int = 0
    d_state: int = 0
    d_conv: int = 0
    state_dtype: str = "bfloat16"

    def state(self, tp: int, num_spec: int = 0) -> tuple[Shapes, tuple[str, ...]]:
        inner = _div(self.intermediate, tp, "mamba intermediate size")
        return ((self.d_conv - 1, inner), (inner, self.d_state)), (self.state_dtype, self.state_dtype)


@record(frozen=True)
class Mamba2Layer(MambaLayer):
    """Mamba2 mixer: Nemotron-H, Granite 4.0 H, Falcon-H1, Mamba2, Zamba2.

    ``spec_rows``: the release gives the conv state a row per speculative token.
    """

    intermediate: int = 0
    n_groups: int = 1
    num_heads: int = 0
    head_dim: int = 0
    d_state: int = 0
    d_conv: int = 4
    conv_dtype: str = "bfloat16"
    ssm_dtype: str = "bfloat16"
    spec_rows: bool = False

    def state(self, tp: int, num_spec: int = 0) -> tuple[Shapes, tuple[str, ...]]:
        groups = self.n_groups + (0 if self.n_groups % tp == 0 else tp - self.n_groups)
        conv_dim = self.intermediate + 2 * groups * self.d_state
        rows = self.d_conv - 1 + (num_spec if self.spec_rows else 0)
        shapes = (
            (rows, _div(conv_dim, tp, "mamba2 conv dimension")),
            (_div(self.num_heads, tp, "mamba2 heads"), self.head_dim, self.d_state),
        )
        return shapes, (self.conv_dtype, self.ssm_dtype)


@record(frozen=True)
class GatedDeltaNetLayer(MambaLayer):
    """Gated delta net linear attention (Qwen3-Next, Qwen3.5, OLMo hybrid); its conv
    state has a row per speculative token in every release that serves it."""

    num_k_heads: int = 0
    num_v_heads: int = 0
    head_k_dim: int = 0
    head_v_dim: int = 0
    d_conv: int = 4
    state_dtype: str = "bfloat16"
    ssm_dtype: str | None = None  # the temporal state's, when the config sets mamba_ssm_dtype

    def checkpoints_on(self, arch: str) -> bool:
        # FlashInfer's GDN prefill kernel emits mid-prefill states; vLLM 0.33 picks it on
        # Hopper, and on Blackwell for 128-wide key heads under CUDA 13 (the wheel's
        # runtime): _resolve_gdn_prefill_backend in gdn/qwen_gdn_linear_attn.py.
        if self.prefill_checkpoint_alignment is None:
            return False
        return arch == "hopper" or (arch in ("blackwell", "blackwell-consumer") and self.head_k_dim == 128)

    def state(self, tp: int, num_spec: int = 0) -> tuple[Shapes, tuple[str, ...]]:
        conv_dim = 2 * self.num_k_heads * self.head_k_dim + self.num_v_heads * self.head_v_dim
        shapes = (
            (self.d_conv - 1 + num_spec, _div(conv_dim, tp, "gated delta net conv dimension")),
            (_div(self.num_v_heads, tp, "linear value heads"), self.head_v_dim, self.head_k_dim),
        )
        return shapes, (self.state_dtype, self.ssm_dtype or self.state_dtype)


@record(frozen=True)
class KDALayer(MambaLayer):
    """Kimi delta attention (Kimi-Linear, Bailing V3): conv over q, k and v plus a
    recurrent state of ``head_dim x head_dim`` per head.

    ``split_conv``: q, k and v keep three conv states (before 0.23);
    ``spec_rows``: the conv state has a row per speculative token (0.27+).
    """

    mamba_type: str = "gdn_attention"
    num_heads: int = 0
    head_dim: int = 0
    d_conv: int = 4
    conv_dtype: str = "bfloat16"
    state_dtype: str = "float32"
    split_conv: bool = False
    spec_rows: bool = False

    def state(self, tp: int, num_spec: int = 0) -> tuple[Shapes, tuple[str, ...]]:
        width = self.num_heads * self.head_dim
        recurrent = (_div(self.num_heads, tp, "KDA heads"), self.head_dim, self.head_dim)
        if self.split_conv:
            conv = (self.d_conv - 1, _div(width, tp, "KDA conv dimension"))
            return (conv, conv, conv, recurrent), (self.conv_dtype,) * 3 + (self.state_dtype,)
        rows = self.d_conv - 1 + (num_spec if self.spec_rows else 0)
        conv = (rows, _div(3 * width, tp, "KDA conv dimension"))
        return (conv, recurrent), (self.conv_dtype, self.state_dtype)


@record(frozen=True)
class ShortConvLayer(MambaLayer):
    """LFM2's gated short convolution: one conv state of ``dim`` channels."""

    mamba_type: str = "short_conv"
    dim: int = 0
    l_cache: int = 3
    conv_dtype: str = "bfloat16"
    spec_rows: bool = False

    def state(self, tp: int, num_spec: int = 0) -> tuple[Shapes, tuple[str, ...]]:
        rows = self.l_cache - 1 + (num_spec if self.spec_rows else 0)
        return ((rows, _div(self.dim, tp, "short conv dimension")),), (self.conv_dtype,)


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
                    f"{prefix}.{i}.linear_attn", i, mamba_type=release.behaviour.gdn_mamba_type,
                    num_k_heads=_int(cfg, "linear_num_key_heads", source),
                    num_v_heads=_int(cfg, "linear_num_value_heads", source),
                    head_k_dim=_int(cfg, "linear_key_head_dim", source),
                    head_v_dim=_int(cfg, "linear_value_head_dim", source),
                    d_conv=_int(cfg, "linear_conv_kernel_dim", source, 4),
                    state_dtype=dtype,
                    ssm_dtype=ssm_dtype,
                    prefill_checkpoint_alignment=release.behaviour.qwen_gdn_checkpoint_alignment,
                )
            )  # fmt: skip
    return out


def nemotron_h(
    cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "model.layers", puzzle: bool = False
) -> list[Layer]:
    """Nemotron-H: ``hybrid_override_pattern`` (M mamba2, * attention, - / E no cache).

    A Puzzle checkpoint (``puzzle``) is built by the same class; one whose
    ``block_configs`` give layers their own heads or sizes is refused, since
    its checkpoint's config code decides them.
    """
    if puzzle and cfg.get("block_configs"):
        raise InputError(
            "gives layers their own configs, which the checkpoint's config code "
            "(get_nemotron_h_config_for_layer) resolves; kvplan cannot derive them",
            source=source,
            field="block_configs",
            hint="describe its layers explicitly with a `layers:` section (see README)",
        )
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
                    conv_dtype=dtype, ssm_dtype=ssm, spec_rows=release.behaviour.mamba2_spec_rows,
                    fixed_checkpoint_alignment=release.behaviour.mamba2_checkpoint_alignment,
                )
            )  # fmt: skip
        elif ch not in "-E":
            raise InputError(f"unknown layer kind '{ch}'", source=source, field="hybrid_override_pattern")
    return out


# Layer type spellings: checkpoints write "mamba" / "attention"; transformers 5 reads
# them as "linear_attention" / "full_attention" (configuration_utils' legacy remap).
MAMBA_TYPES = ("mamba", "linear_attention")
ATTENTION_TYPES = ("attention", "full_attention")


def granite_h(cfg: dict[str, Any], source: str, release: Any, *, prefix: str = "model.layers") -> list[Layer]:
    """Granite 4.0 H: ``layer_types`` of "mamba" / "attention" (every layer Mamba when
    absent, as GraniteMoeHybridConfig fills it); ``mamba_d_head`` defaults to
    ``mamba_expand x hidden_size / mamba_n_heads``."""
    n = _int(cfg, "num_hidden_layers", source)
    types = cfg.get("layer_types") or ["mamba"] * n
    if not isinstance(types, list) or len(types) != n:
        raise InputError(f"must list {n} layer types", source=source, field="layer_types")
    dtype = _dtype(cfg)
    hidden = _int(cfg, "hidden_size", source)
    inner = _int(cfg, "mamba_expand", source, 2) * hidden
    heads = _int(cfg, "mamba_n_heads", source, 128)
    head_dim = cfg.get("mamba_d_head")
    head_dim = (
        _int(cfg, "mamba_d_head", source) if head_dim not in (None, "auto") else _div(inner, heads, "mamba")
    )
    out: list[Layer] = []
    for i, kind in enumerate(types):
        if kind in ATTENTION_TYPES:
            out.append(_attention(cfg, source, f"{prefix}.{i}.self_attn.attn", i, head_key=None))
        elif kind in MAMBA_TYPES:
            out.append(
                Mamba2Layer(
                    f"{prefix}.{i}.mixer", i, intermediate=inner,
                    n_groups=_int(cfg, "mamba_n_groups", source, 1), num_heads=heads,
                    head_dim=head_dim, d_state=_int(cfg, "mamba_d_state", source, 256),
                    d_conv=_int(cfg, "mamba_d_conv", source, 4), conv_dtype=dtype, ssm_dtype=dtype,
                    spec_rows=release.behaviour.mamba2_spec_rows,
                    fixed_checkpoint_alignment=release.behaviour.mamba2_checkpoint_alignment,
                )
            )  # fmt: skip
        else:
            raise InputError(f"unknown layer type {kind!r}", source=source, field="layer_types")
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
                spec_rows=release.behaviour.mamba2_spec_rows,
                fixed_checkpoint_alignment=release.behaviour.mamba2_checkpoint_alignment,
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
    heads = (
        "num_attention_heads",
        "n_head_kv",
        "num_kv_heads",
        "num_key_value_heads",
        "multi_query_group_num",
    )
    if release.behaviour.mamba2_needs_heads and not any(key in cfg for key in heads):
        # vllm/transformers_utils/model_arch_config_convertor.py: the KV head count falls back
        # to num_attention_heads, which transformers' Mamba2Config does not have.
        message = "'Mamba2Config' object has no attribute 'num_attention_heads'"
        raise PlannerRefusal(
            f"vLLM {release.version} cannot read a Mamba2 config: {message}",
            "vLLM 0.18.0 and later serve it",
            vllm_type="AttributeError",
            vllm_message=message,
        )
    n = _int(cfg, "num_hidden_layers", source)
    hidden = _int(cfg, "hidden_size", source)
    dtype = _dtype(cfg)
    return [
        Mamba2Layer(
            f"{prefix}.{i}.mixer", i, intermediate=_int(cfg, "expand", source, 2) * hidden,
            n_groups=_int(cfg, "n_groups", source, 1), num_heads=_int(cfg, "num_heads", source),
            head_dim=_int(cfg, "head_dim", source), d_state=_int(cfg, "state_size", source),
            d_conv=_int(cfg, "conv_kernel", source, 4), conv_dtype=dtype, ssm_dtype=dtype,
            spec_rows=release.behaviour.mamba2_spec_rows,
            fixed_checkpoint_alignment=release.behaviour.mamba2_checkpoint_alignment,
        )
        for i in range(n)
    ]  # fmt: skip
