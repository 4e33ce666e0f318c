"""Dense decoders: one attention layer per decoder layer, full or, where vLLM
gives it a window, sliding.

Most of vLLM's text architectures build the same kind of layer and differ
only in which config keys they read.  ``dense`` takes those differences as
options, so an architecture is one registry entry:

* ``head``: how the head size is found (``HEAD_RULES``);
* ``kv``: how the KV head count is found (``KV_RULES``);
* ``window``: which window a layer gets (``layers``: ``layer_types`` marks
  sliding layers and the model-wide window covers the rest; ``model``: only
  the model-wide window, the model passes no per-layer one; ``interleaved``:
  ``interleaved_sliding_window``'s size, else the model-wide window;
  ``none``: the model builds its attention without the cache config, so
  never a window);
* ``kv_dtype``: ``model`` where the attention is built without the cache
  config and so keeps the model dtype whatever ``--kv-cache-dtype`` says
  (from 0.11.1, when specs started taking each layer's own dtype);
* ``prefix`` / ``attn``: the module path, ``{prefix}.{i}.{attn}``;
* ``replicate``: False where the model asserts KV heads % TP == 0 instead of
  replicating KV heads over TP ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kvplan.dtypes import canonical_dtype, model_dtype
from kvplan.errors import InputError, PlannerRefusal
from kvplan.model.config import Config, attention_heads, head_size, layer_types, tokens, value
from kvplan.model.layers import (
    AttentionLayer,
    ChunkedLocalLayer,
    Layer,
    SinkAttentionLayer,
    SlidingWindowLayer,
)
from kvplan.releases import Release


def attention(
    name: str, i: int, heads: int, kv: int, head: int, window: int | None = None, chunk: int | None = None
) -> Layer:
    """One attention layer: sliding with a ``window``, chunked with a ``chunk``, else full."""
    if window:
        return SlidingWindowLayer(
            name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads, sliding_window=window
        )
    if chunk:
        return ChunkedLocalLayer(
            name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads, attention_chunk_size=chunk
        )
    return AttentionLayer(name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads)


def global_window(cfg: Config, types: list[str] | None, release: Release) -> int | None:
    """vLLM's model-wide ``cache_config.sliding_window``: set unless layer types mix.

    From 0.27 it is kept only when every layer type is sliding (or none are given).
    """
    window = cfg.get("sliding_window")
    if not window or (cfg.get("use_sliding_window") is False):
        return None
    if types is not None:
        kinds = set(types)
        if release.behaviour.global_window_all_sliding:
            if kinds != {"sliding_attention"}:
                return None
        elif len(kinds) > 1:
            return None
    return int(window)


# ---------------------------------------------------------------- head size
def _head_dim_or_hidden(cfg: Config, source: str, heads: int, hidden: int) -> int:
    return head_size(cfg, source, heads, hidden)


def _hidden(cfg: Config, source: str, heads: int, hidden: int) -> int:
    return head_size(cfg, source, heads, hidden, use_key=False)


def _required(cfg: Config, source: str, heads: int, hidden: int) -> int:
    return int(value(cfg, "head_dim", source))


def _head_dim_key(cfg: Config, source: str, heads: int, hidden: int) -> int:
    if "head_dim" not in cfg:
        raise InputError("required key is missing (vLLM reads it)", source=source, field="head_dim")
    return head_size(cfg, source, heads, hidden)


def _hunyuan(cfg: Config, source: str, heads: int, hidden: int) -> int:
    if cfg.get("head_dim"):
        return int(value(cfg, "head_dim", source))
    if "attention_head_dim" in cfg:
        return int(value(cfg, "attention_head_dim", source))
    return head_size(cfg, source, heads, hidden, use_key=False)


def _qk(cfg: Config, source: str, heads: int, hidden: int) -> int:
    return int(value(cfg, "qk_nope_head_dim", source)) + int(value(cfg, "qk_rope_head_dim", source))


def _arch_config(cfg: Config, source: str, heads: int, hidden: int) -> int:
    if isinstance(cfg.get("head_dim"), int) and cfg["head_dim"] > 0:
        return int(value(cfg, "head_dim", source))
    if cfg.get("hidden_size_per_head") is not None:
        return int(value(cfg, "hidden_size_per_head", source))
    return head_size(cfg, source, heads, hidden, use_key=False)


HEAD_RULES: dict[str, Callable[[Config, str, int, int], int]] = {
    # head_dim when set (and not 0), else hidden_size / num_attention_heads: Llama and most
    "head_dim": _head_dim_or_hidden,
    # hidden_size / num_attention_heads, head_dim ignored: Qwen2, GraniteMoe, InternLM2, GPT-2 ...
    "hidden": _hidden,
    # head_dim read as it is: Gemma, Step3Text
    "required": _required,
    # head_dim when set, else hidden/heads, but the key must be there: Glm4Moe
    "head_dim_key": _head_dim_key,
    # head_dim when set, else attention_head_dim, else hidden/heads: HunYuan's own file
    "hunyuan": _hunyuan,
    # qk_nope_head_dim + qk_rope_head_dim: MiniCPM3's plain cache of MLA-shaped heads
    "qk": _qk,
    # vLLM's model-wide head size (ModelConfig.get_head_size): the Transformers backend
    "arch_config": _arch_config,
}


# ---------------------------------------------------------------- KV heads
def _checked(kv: int, heads: int, source: str, key: str) -> int:
    if isinstance(kv, bool) or not isinstance(kv, int) or kv <= 0:
        raise InputError("must be a positive number of KV heads", source=source, field=key, value=kv)
    if kv > heads or heads % kv:
        raise InputError(
            f"{key} ({kv}) must divide num_attention_heads ({heads})", source=source, field=key, value=kv
        )
    return kv


def _kv_key(cfg: Config, source: str, heads: int) -> int:
    return attention_heads(cfg, source)[1]


def _kv_heads(cfg: Config, source: str, heads: int) -> int:
    return heads


def _kv_falcon(cfg: Config, source: str, heads: int) -> int:
    if cfg.get("new_decoder_architecture"):
        return _checked(cfg.get("num_kv_heads") or heads, heads, source, "num_kv_heads")
    return 1 if cfg.get("multi_query", True) else heads


def _kv_chatglm(cfg: Config, source: str, heads: int) -> int:
    if cfg.get("multi_query_attention"):
        return _checked(value(cfg, "multi_query_group_num", source), heads, source, "multi_query_group_num")
    return heads


def _kv_step1(cfg: Config, source: str, heads: int) -> int:
    for key in ("num_attention_groups", "num_key_value_heads"):
        if key in cfg:
            kv = cfg[key]
            return 1 if kv is None or (isinstance(kv, int) and kv <= 0) else _checked(kv, heads, source, key)
    return 1


def _kv_one(cfg: Config, source: str, heads: int) -> int:
    return 1


_ARCH_KV_KEYS = (
    "n_head_kv",
    "num_kv_heads",
    "num_key_value_heads",
    "multi_query_group_num",
    "num_attention_groups",
)


def _kv_arch_config(cfg: Config, source: str, heads: int) -> int:
    key = next((k for k in _ARCH_KV_KEYS if cfg.get(k) is not None), None)
    return heads if key is None else _checked(cfg[key], heads, source, key)


KV_RULES: dict[str, Callable[[Config, str, int], int]] = {
    # num_key_value_heads, else num_attention_heads: Llama and most
    "key": _kv_key,
    # as many KV heads as attention heads (MHA): GPT-2, GPT-J, OPT, Bloom, MiniCPM3
    "heads": _kv_heads,
    # new_decoder_architecture: num_kv_heads; else multi_query: 1; else MHA
    "falcon": _kv_falcon,
    # multi_query_attention: multi_query_group_num; else MHA
    "chatglm": _kv_chatglm,
    # num_attention_groups, else num_key_value_heads, else 1 (0 or less: 1)
    "step1": _kv_step1,
    # one KV head on every rank: Step3Text
    "one": _kv_one,
    # the first of vLLM's KV-head keys (n_head_kv, num_kv_heads, ...), else MHA: Transformers backend
    "arch_config": _kv_arch_config,
}


def _rule(table: dict[str, Callable[..., int]], name: str, what: str) -> Callable[..., int]:
    if name not in table:
        raise ValueError(f"unknown {what} rule {name!r}")  # a registry mistake, not a user's
    return table[name]


def _fixed_dtype(cfg: Config, source: str) -> str | None:
    """The model dtype, for attention built without the cache config; None when the
    checkpoint's quantization config asks for an fp8 KV cache (vLLM still honours it)."""
    quant = cfg.get("quantization_config")
    if isinstance(quant, dict) and quant.get("kv_cache_scheme"):
        return None
    raw = cfg.get("torch_dtype", cfg.get("dtype"))
    return model_dtype(canonical_dtype(raw, field="torch_dtype", source=source) if raw else None)


def _interleaved(cfg: Config, source: str, n: int) -> list[int | None]:
    """Per-layer windows from ``interleaved_sliding_window``: one size for every
    layer, or a list repeated over the layers (None: the model-wide window)."""
    if "interleaved_sliding_window" not in cfg:
        return [None] * n
    spec = cfg["interleaved_sliding_window"]
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [tokens(cfg, "interleaved_sliding_window", source)] * n
    if isinstance(spec, list) and spec:
        sizes = [tokens({"w": w}, "w", source) for w in spec]
        return [sizes[i % len(sizes)] for i in range(n)]
    raise InputError(
        "must be a window size or a list of them (vLLM refuses anything else)",
        source=source,
        field="interleaved_sliding_window",
        value=spec,
    )


def dense(
    cfg: Config,
    source: str,
    release: Release,
    *,
    prefix: str = "model.layers",
    attn: str = "self_attn.attn",
    head: str = "head_dim",
    kv: str = "key",
    window: str = "layers",
    kv_dtype: str = "cache",
    replicate: bool = True,
    unsupported: tuple[str, ...] = (),
    window_if: str | None = None,
    before: dict[str, dict[str, Any]] | None = None,
    head_key: bool | None = None,
) -> list[Layer]:
    """One attention layer per decoder layer, named ``{prefix}.{i}.{attn}``.

    With ``window="layers"`` a layer slides when ``layer_types[i]`` says so;
    the config's ``sliding_window`` applies to every layer when vLLM keeps it
    model-wide (no ``layer_types``, or all sliding: Mistral v0.1, Phi-3).
    ``head_key=False`` is ``head="hidden"``; a true value of one of the
    ``unsupported`` keys asks for a layout kvplan does not derive; with
    ``window_if``, ``sliding_window`` counts only when that key is true (the
    config class drops it otherwise).  ``before[r]``: the ``prefix``, ``attn``
    or ``replicate`` of the model file on releases before ``r``, and the
    ``defaults`` the config class those releases read the config with fills in.
    """
    for until, changed in (before or {}).items():
        if release.serves(None, until):
            prefix = changed.get("prefix", prefix)
            attn = changed.get("attn", attn)
            replicate = changed.get("replicate", replicate)
            cfg = {**changed.get("defaults", {}), **cfg}
    for key in unsupported:
        if cfg.get(key):
            raise InputError(
                "asks for a KV cache layout kvplan does not derive for this architecture",
                source=source,
                field=key,
                value=cfg[key],
            )
    if head_key is not None:
        head = "head_dim" if head_key else "hidden"
    if window_if is not None and not cfg.get(window_if):
        cfg = {**cfg, "sliding_window": None}
    n = value(cfg, "num_hidden_layers", source)
    heads = value(cfg, "num_attention_heads", source)
    hidden = value(cfg, "hidden_size", source)
    num_kv = _rule(KV_RULES, kv, "KV head")(cfg, source, heads)
    size = _rule(HEAD_RULES, head, "head size")(cfg, source, heads, hidden)
    types = layer_types(cfg, source, n)
    if window == "none":
        windows: list[int | None] = [None] * n
    elif window == "interleaved":
        everywhere = global_window(cfg, types, release)
        windows = [w or everywhere for w in _interleaved(cfg, source, n)]
    else:
        everywhere = global_window(cfg, types, release)
        per_layer = tokens(cfg, "sliding_window", source) if window == "layers" else None
        windows = [
            int(per_layer)
            if per_layer and types is not None and types[i] == "sliding_attention"
            else everywhere
            for i in range(n)
        ]
    own_dtype = kv_dtype == "model" and release.behaviour.per_layer_kv_dtype
    dtype = _fixed_dtype(cfg, source) if own_dtype else None
    fixed: dict[str, Any] = {"dtype": dtype} if dtype else {}
    if not replicate:
        fixed["replicate_kv"] = False
    names = [f"{prefix}.{i}.{attn}" if prefix else f"{i}.{attn}" for i in range(n)]
    layers = [attention(names[i], i, heads, num_kv, size, windows[i]) for i in range(n)]
    return [replace(layer, **fixed) for layer in layers] if fixed else layers


def qwen2(
    cfg: Config, source: str, release: Release, *, head: str = "hidden", prefix: str = "model.layers"
) -> list[Layer]:
    """Qwen2/2.5, Qwen3, MiMo (vLLM's ``Qwen2Model``): no per-layer window.

    transformers keeps ``sliding_window`` only with ``use_sliding_window`` and,
    without ``layer_types``, marks layers from ``max_window_layers`` on as
    sliding; vLLM refuses mixed layer types unless ``max_window_layers`` equals
    the layer count, and otherwise applies only its model-wide window.
    """
    n = value(cfg, "num_hidden_layers", source)
    window = cfg.get("sliding_window") if cfg.get("use_sliding_window") else None
    first = cfg.get("max_window_layers", n)
    types = layer_types(cfg, source, n) or [
        "sliding_attention" if window is not None and i >= first else "full_attention" for i in range(n)
    ]
    if len(set(types)) > 1 and first != n:
        raise InputError(
            "sliding window on only some layers (max_window_layers < num_hidden_layers) "
            "is not supported by vLLM",
            source=source,
            field="max_window_layers",
            value=first,
        )
    return dense(
        {**cfg, "sliding_window": window, "layer_types": types},
        source,
        release,
        head=head,
        window="model",
        prefix=prefix,
    )


def qwen2_moe(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Qwen1.5/2 MoE: transformers marks even layers below ``max_window_layers`` sliding
    when ``use_sliding_window``; vLLM passes no per-layer window, only its model-wide one."""
    n = value(cfg, "num_hidden_layers", source)
    on = bool(cfg.get("use_sliding_window"))
    first = cfg.get("max_window_layers", n)
    if not isinstance(first, int):
        raise InputError("must be an integer", source=source, field="max_window_layers", value=first)
    types = layer_types(cfg, source, n) or [
        "sliding_attention" if on and (i + 1) % 2 and i < first else "full_attention" for i in range(n)
    ]
    return dense(
        {**cfg, "sliding_window": cfg.get("sliding_window") if on else None, "layer_types": types},
        source,
        release,
        head="hidden",
        window="model",
        prefix=prefix,
    )


def decilm(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """DeciLM / Llama-Nemotron NAS (nemotron_nas.py): Llama attention where
    ``block_configs[i].attention`` is not a no-op, with
    ``num_attention_heads // n_heads_in_group`` KV heads; no-op layers hold no cache."""
    n = value(cfg, "num_hidden_layers", source)
    blocks = cfg.get("block_configs")
    if not isinstance(blocks, list) or len(blocks) != n or not all(isinstance(b, dict) for b in blocks):
        raise InputError(f"must list {n} block configs", source=source, field="block_configs")
    heads = value(cfg, "num_attention_heads", source)
    layers = dense({**cfg, "num_key_value_heads": heads}, source, release, prefix=prefix)
    kept: list[Layer] = []
    for i, (block, layer) in enumerate(zip(blocks, layers, strict=True)):
        attn = block.get("attention")
        if not isinstance(attn, dict):
            raise InputError("must be a mapping", source=source, field=f"block_configs[{i}].attention")
        if attn.get("no_op"):
            continue
        group = value(attn, "n_heads_in_group", source)
        assert isinstance(layer, AttentionLayer)
        kept.append(replace(layer, num_kv_heads=_checked(heads // group, heads, source, "n_heads_in_group")))
    return kept


def deepseek(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """DeepSeek (V1, deepseek_v2.py's DeepseekAttention): GQA with hidden/heads, used when
    ``model_type`` is ``deepseek`` or the config has no qk head dims; otherwise the
    class builds DeepSeek-V2's latent attention."""
    mha = cfg.get("model_type") == "deepseek" or not (
        cfg.get("qk_nope_head_dim") or cfg.get("qk_rope_head_dim")
    )
    if not mha:
        from kvplan.model.families.mla import deepseek as latent

        return latent(cfg, source, release, prefix=prefix)
    if cfg.get("rswa_window") is not None:
        raise InputError(
            "rswa_window attention (vLLM's RSWA spec) is not a KV cache kind kvplan derives",
            source=source,
            field="rswa_window",
        )
    return dense(cfg, source, release, head="hidden", window="model", prefix=prefix)


def openpangu(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """openPangu Embedded and Pro MoE V2 (openpangu.py): latent attention when the config
    has ``qk_nope_head_dim``, ``qk_rope_head_dim``, ``v_head_dim`` and ``kv_lora_rank``
    (refused), sink attention when ``param_sink_number`` > 0, else GQA with
    ``head_dim`` (else hidden/heads) and ``interleaved_sliding_window``."""
    if all(k in cfg for k in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "kv_lora_rank")):
        raise InputError(
            "openPangu's latent attention (MLA) is not a layout kvplan derives",
            source=source,
            field="kv_lora_rank",
        )
    sinks = cfg.get("param_sink_number")
    if isinstance(sinks, int) and sinks > 0:
        return _openpangu_sink(cfg, source, release, sinks, prefix)
    if cfg.get("is_causal", True) is False:
        raise InputError(
            "is_causal false builds encoder-only attention, which holds no KV cache",
            source=source,
            field="is_causal",
        )
    return dense(cfg, source, release, window="interleaved", prefix=prefix)


def _openpangu_sink(cfg: Config, source: str, release: Release, sinks: int, prefix: str) -> list[Layer]:
    """openPangu's sink attention (``OpenPanguSinkAttention``): K rows of
    ``qk_rope_dim + qk_nope_dim``, V rows of ``v_channels``, ``param_sink_number``
    sink tokens; the KV heads are split over TP ranks, never replicated.  The
    layer keeps a full cache whatever ``interleaved_sliding_window`` says (its
    spec records no window).  Releases before 0.30 fail to load the layer."""
    if not release.behaviour.sink_attention_builds:
        message = "'StaticSinkAttention' object has no attribute '_k_scale'"
        raise PlannerRefusal(
            f"vLLM {release.version} cannot load openPangu's sink attention ({message})",
            "its static sink attention layer loads from vLLM 0.30.0 on",
            vllm_type="AttributeError",
            vllm_message=message,
        )
    if cfg.get("is_causal", True) is False:
        raise PlannerRefusal(
            "is_causal=False is not support for attention with sink",
            "openPangu's sink attention is decoder-only",
        )
    n = value(cfg, "num_hidden_layers", source)
    heads = value(cfg, "num_attention_heads", source)
    kv = value(cfg, "num_key_value_heads", source, default=heads)
    head = value(cfg, "qk_rope_dim", source) + value(cfg, "qk_nope_dim", source)
    head_v = value(cfg, "v_channels", source)
    return [
        SinkAttentionLayer(
            f"{prefix}.{i}.self_attn.attn",
            i,
            num_kv_heads=kv,
            head_size=head,
            head_size_v=head_v,
            num_attention_heads=heads,
            replicate_kv=False,
            sink_len=sinks,
        )
        for i in range(n)
    ]
