"""Hybrids of Kimi delta attention (KDA) and attention.

AliceAI (alice_ai.py) builds Kimi-Linear's KDA layer on the decoder layers whose
``layer_types`` entry is ``linear_attention`` and Qwen3-Next's gated attention on
the ``full_attention`` ones; Bailing MoE V3 (bailing_moe_v3.py) alternates KDA
with MLA by a fixed group pattern.  State shapes are those of
``kvplan.model.families.mamba``.
"""

from __future__ import annotations

from typing import Any

from kvplan.errors import InputError, PlannerRefusal
from kvplan.model.families.mamba import KDALayer, _dtype, _int
from kvplan.model.layers import AttentionLayer, Layer, MLALayer
from kvplan.records import record
from kvplan.releases import Release


class _OneStage:
    """A layer of a model vLLM refuses to split over pipeline stages (AliceAI's
    ``verify_and_update_config``, vllm/model_executor/models/config.py)."""

    def check_pp(self, pp: int) -> None:
        if pp != 1:
            message = "AliceAI does not support pipeline parallelism; pipeline_parallel_size=1 is required"
            raise PlannerRefusal(
                message,
                "serve it with --pipeline-parallel-size 1",
                vllm_type="NotImplementedError",
                vllm_message=message,
            )


@record(frozen=True)
class AliceKDALayer(_OneStage, KDALayer):
    """AliceAI's KDA layer (Kimi-Linear's)."""


@record(frozen=True, eq=False)
class AliceAttentionLayer(_OneStage, AttentionLayer):
    """AliceAI's gated full attention (Qwen3-Next's)."""


def alice_ai(
    cfg: dict[str, Any], source: str, release: Release, *, prefix: str = "model.layers"
) -> list[Layer]:
    """AliceAI: KDA with ``linear_num_key_heads`` heads of ``linear_key_head_dim`` and a
    ``linear_conv_kernel_dim`` convolution, registered as ``{i}.linear_attn`` (vLLM
    requires the value heads and head size to equal the key ones); full attention
    with ``num_key_value_heads`` heads of ``head_dim`` as ``{i}.self_attn.attn``.

    ``head_dim`` is required: without it Qwen3-Next's attention divides the hidden
    size by the heads of one TP rank, which kvplan does not reproduce.
    """
    n = _int(cfg, "num_hidden_layers", source)
    types = cfg.get("layer_types")
    if not isinstance(types, list) or len(types) != n or not all(isinstance(t, str) for t in types):
        raise InputError(f"must list {n} layer types", source=source, field="layer_types", value=types)
    unknown = sorted(set(types) - {"linear_attention", "full_attention"})
    if unknown:
        raise InputError(f"unknown layer types {unknown}", source=source, field="layer_types")
    experts = cfg.get("num_experts")
    if not isinstance(experts, int) or experts <= 0:
        raise InputError(
            "must be positive (AliceAI requires sparse experts)", source=source, field="num_experts"
        )
    for key, other in (
        ("linear_num_key_heads", "linear_num_value_heads"),
        ("linear_key_head_dim", "linear_value_head_dim"),
    ):
        if cfg.get(key) != cfg.get(other):
            raise InputError(
                f"must equal {key} (vLLM's KDA layer requires matching key and value heads)",
                source=source,
                field=other,
                value=cfg.get(other),
            )
    heads = _int(cfg, "num_attention_heads", source)
    kv = _int(cfg, "num_key_value_heads", source, heads)
    head = _int(cfg, "head_dim", source)
    dtype = _dtype(cfg)
    behaviour = release.behaviour
    out: list[Layer] = []
    for i, kind in enumerate(types):
        if kind == "linear_attention":
            out.append(
                AliceKDALayer(
                    f"{prefix}.{i}.linear_attn", i, num_heads=_int(cfg, "linear_num_key_heads", source),
                    head_dim=_int(cfg, "linear_key_head_dim", source),
                    d_conv=_int(cfg, "linear_conv_kernel_dim", source), conv_dtype=dtype,
                    split_conv=behaviour.kda_split_conv, spec_rows=behaviour.kda_spec_rows,
                )
            )  # fmt: skip
        else:
            out.append(
                AliceAttentionLayer(
                    f"{prefix}.{i}.self_attn.attn",
                    i,
                    num_kv_heads=kv,
                    head_size=head,
                    num_attention_heads=heads,
                )
            )
    return out


def bailing_moe_v3(
    cfg: dict[str, Any], source: str, release: Release, *, prefix: str = "model.layers"
) -> list[Layer]:
    """Bailing MoE V3 (bailing_moe_v3.py): in each group of ``layer_group_size`` layers
    the last is MLA and the others KDA, and the layers after the last whole group
    are MLA too.  KDA has ``num_attention_heads`` heads of ``head_dim`` and a
    ``short_conv_kernel_size`` convolution, registered as ``{i}.self_attn``; MLA
    keeps ``kv_lora_rank + qk_rope_head_dim`` (512 and 64 when the config names
    none, vLLM's own fallbacks) as ``{i}.self_attn.attn``.

    ``layer_group_size``, ``head_dim`` and ``short_conv_kernel_size`` are required:
    vLLM reads them from the config class, whose defaults depend on the checkpoint's
    code.  vLLM builds the KDA layers only with ``no_kda_lora`` true.
    """
    n = _int(cfg, "num_hidden_layers", source)
    group = _int(cfg, "layer_group_size", source)
    if cfg.get("no_kda_lora") is not True:
        raise InputError(
            "must be true (vLLM's Bailing V3 KDA layer expects no_kda_lora=True)",
            source=source,
            field="no_kda_lora",
            value=cfg.get("no_kda_lora"),
        )
    heads = _int(cfg, "num_attention_heads", source)
    head = _int(cfg, "head_dim", source)
    conv = _int(cfg, "short_conv_kernel_size", source)
    rank = _int(cfg, "kv_lora_rank", source, 512)
    rope = _int(cfg, "qk_rope_head_dim", source, 64)
    dtype = _dtype(cfg)
    behaviour = release.behaviour
    whole = n // group * group
    out: list[Layer] = []
    for i in range(n):
        if (i + 1) % group and i < whole:
            out.append(
                KDALayer(
                    f"{prefix}.{i}.self_attn", i, num_heads=heads, head_dim=head, d_conv=conv,
                    conv_dtype=dtype, split_conv=behaviour.kda_split_conv, spec_rows=behaviour.kda_spec_rows,
                )
            )  # fmt: skip
        else:
            out.append(MLALayer(f"{prefix}.{i}.self_attn.attn", i, kv_lora_rank=rank, qk_rope_head_dim=rope))
    return out
