"""From a Hugging Face config to the model's KV-cache-holding layers.

One derivation per attention family, chosen by the config's ``architectures``
entry; an architecture kvplan does not know is refused, never guessed.  The
rules mirror how vLLM's model files build their attention layers (which layer
slides, which head size, the module path of each layer).  An explicit
``layers:`` list in the model YAML replaces derivation entirely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kvplan.dtypes import canonical_dtype, model_dtype
from kvplan.errors import InputError
from kvplan.inputs import ModelInput
from kvplan.model import (
    AttentionLayer,
    ChunkedLocalLayer,
    Layer,
    MLALayer,
    ModelDescription,
    SlidingWindowLayer,
)
from kvplan.releases import Release, parse_version

Config = dict[str, Any]
Deriver = Callable[[Config, str, Release], list[Layer]]


def _get(
    cfg: Config, key: str, source: str, *, kind: type | tuple[type, ...] = int, default: Any = ...
) -> Any:
    """A config value of the expected type, or an error naming the key."""
    if key not in cfg or cfg[key] is None:
        if default is ...:
            raise InputError("required key is missing", source=source, field=key)
        return default
    value = cfg[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise InputError("has the wrong type", source=source, field=key, value=value)
    if not isinstance(value, kinds):
        raise InputError(
            f"must be {' or '.join(k.__name__ for k in kinds)}", source=source, field=key, value=value
        )
    if isinstance(value, int) and not isinstance(value, bool) and kinds == (int,):
        if value <= 0:
            raise InputError("must be positive", source=source, field=key, value=value)
        if value > 10_000_000:
            raise InputError("is absurdly large", source=source, field=key, value=value)
    return value


def _tokens(cfg: Config, key: str, source: str) -> int | None:
    """A window or chunk size in tokens; absent, null or 0 mean none."""
    value = cfg.get(key)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10_000_000:
        raise InputError("must be a whole number of tokens", source=source, field=key, value=value)
    return value


def _layer_types(cfg: Config, source: str, n: int) -> list[str] | None:
    types = cfg.get("layer_types")
    if types is None:
        return None
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InputError("must be a list of strings", source=source, field="layer_types", value=types)
    if len(types) != n:
        raise InputError(
            f"has {len(types)} entries but num_hidden_layers is {n}",
            source=source,
            field="layer_types",
        )
    return types


def _heads(cfg: Config, source: str) -> tuple[int, int, int]:
    """(num_attention_heads, num_kv_heads, hidden_size)."""
    heads = _get(cfg, "num_attention_heads", source)
    kv = _get(cfg, "num_key_value_heads", source, default=heads)
    hidden = _get(cfg, "hidden_size", source)
    if kv > heads or heads % kv:
        raise InputError(
            f"num_key_value_heads ({kv}) must divide num_attention_heads ({heads})",
            source=source,
            field="num_key_value_heads",
            value=kv,
        )
    return heads, kv, hidden


def _head_dim(cfg: Config, source: str, heads: int, hidden: int, *, use_key: bool = True) -> int:
    if use_key and cfg.get("head_dim"):
        return int(_get(cfg, "head_dim", source))
    if hidden % heads:
        raise InputError(
            f"hidden_size ({hidden}) is not divisible by num_attention_heads ({heads})",
            source=source,
            field="hidden_size",
        )
    return hidden // heads


def _attention(
    name: str, i: int, heads: int, kv: int, head: int, window: int | None = None, chunk: int | None = None
) -> Layer:
    if window:
        return SlidingWindowLayer(
            name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads, sliding_window=window
        )
    if chunk:
        return ChunkedLocalLayer(
            name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads, attention_chunk_size=chunk
        )
    return AttentionLayer(name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads)


def _global_window(cfg: Config, types: list[str] | None, release: Release) -> int | None:
    """vLLM's model-wide ``cache_config.sliding_window``: set unless layer types mix.

    From 0.33 it is kept only when every layer type is sliding (or none are given).
    """
    window = cfg.get("sliding_window")
    if not window or (cfg.get("use_sliding_window") is False):
        return None
    if types is not None:
        kinds = set(types)
        if release.key >= (0, 33, 0):
            if kinds != {"sliding_attention"}:
                return None
        elif len(kinds) > 1:
            return None
    return int(window)


def _prefix(cfg: Config) -> str:
    return cfg.get("_kvplan_prefix", "model.layers")


def dense(cfg: Config, source: str, release: Release, *, head_key: bool = True) -> list[Layer]:
    """Llama-style decoders (Llama, Mistral, Phi-3/4, Qwen3, Granite, ...).

    A layer slides when ``layer_types[i]`` says so; without ``layer_types`` the
    config's ``sliding_window`` applies to every layer (Mistral v0.1, Phi-3).
    """
    n = _get(cfg, "num_hidden_layers", source)
    heads, kv, hidden = _heads(cfg, source)
    head = _head_dim(cfg, source, heads, hidden, use_key=head_key)
    types = _layer_types(cfg, source, n)
    window = _tokens(cfg, "sliding_window", source)
    everywhere = _global_window(cfg, types, release)
    layers = []
    for i in range(n):
        w = everywhere
        if types is not None and types[i] == "sliding_attention" and window:
            w = int(window)
        layers.append(_attention(f"{_prefix(cfg)}.{i}.self_attn.attn", i, heads, kv, head, w))
    return layers


def qwen2(cfg: Config, source: str, release: Release) -> list[Layer]:
    """Qwen2/2.5: head size is always hidden/heads; ``use_sliding_window`` with
    ``max_window_layers`` below the layer count is refused, as vLLM refuses it."""
    n = _get(cfg, "num_hidden_layers", source)
    if cfg.get("use_sliding_window") and cfg.get("sliding_window"):
        mwl = cfg.get("max_window_layers", n)
        if isinstance(mwl, int) and mwl < n:
            raise InputError(
                "sliding window on only some layers (max_window_layers < num_hidden_layers) "
                "is not supported by vLLM",
                source=source,
                field="max_window_layers",
                value=mwl,
            )
    return dense({**cfg, "layer_types": None}, source, release, head_key=False)


def alternating(period: int, head_key: bool = True) -> Deriver:
    """Models whose HF config marks layer i full when ``(i + 1) % period == 0``
    unless ``layer_types`` is given (Gemma 2: 2, Gemma 3: 6, Cohere2: 4)."""

    def derive(cfg: Config, source: str, release: Release) -> list[Layer]:
        n = _get(cfg, "num_hidden_layers", source)
        p = cfg.get("sliding_window_pattern") or period
        if not isinstance(p, int) or p <= 0:
            raise InputError(
                "must be a positive integer", source=source, field="sliding_window_pattern", value=p
            )
        types = _layer_types(cfg, source, n) or [
            "sliding_attention" if (i + 1) % p else "full_attention" for i in range(n)
        ]
        return dense({**cfg, "layer_types": types}, source, release, head_key=head_key)

    return derive


def cohere2(cfg: Config, source: str, release: Release) -> list[Layer]:
    """Cohere2: sliding every layer but each 4th; from 0.29 vLLM widens the window by one."""
    window = _get(cfg, "sliding_window", source)
    if release.key >= (0, 29, 0):
        window += 1
    return alternating(4, head_key=release.key >= (0, 29, 0))(
        {**cfg, "sliding_window": window}, source, release
    )


def gpt_oss(cfg: Config, source: str, release: Release) -> list[Layer]:
    """gpt-oss: even layers slide (window 128), odd layers are full; path ``.attn.attn``."""
    n = _get(cfg, "num_hidden_layers", source)
    heads, kv, hidden = _heads(cfg, source)
    head = _head_dim(cfg, source, heads, hidden)
    window = _get(cfg, "sliding_window", source)
    return [
        _attention(f"model.layers.{i}.attn.attn", i, heads, kv, head, window if i % 2 == 0 else None)
        for i in range(n)
    ]


def llama4(cfg: Config, source: str, release: Release) -> list[Layer]:
    """Llama 4: chunked local attention on RoPE layers; every ``interleave``-th layer
    (``no_rope_layers[i] == 0``) is global full attention."""
    n = _get(cfg, "num_hidden_layers", source)
    heads, kv, hidden = _heads(cfg, source)
    head = _head_dim(cfg, source, heads, hidden)
    chunk = _tokens(cfg, "attention_chunk_size", source)
    no_rope = cfg.get("no_rope_layers")
    if not no_rope:
        interval = _get(cfg, "no_rope_layer_interval", source, default=4)
        no_rope = [int((i + 1) % interval != 0) for i in range(n)]
    if not isinstance(no_rope, list) or len(no_rope) != n:
        raise InputError(f"must list {n} entries", source=source, field="no_rope_layers", value=no_rope)
    return [
        _attention(
            f"{_prefix(cfg)}.{i}.self_attn.attn",
            i,
            heads,
            kv,
            head,
            chunk=chunk if no_rope[i] and chunk else None,
        )
        for i in range(n)
    ]


def mla(cfg: Config, source: str, release: Release) -> list[Layer]:
    """DeepSeek V2/V3/R1, Kimi K2: one latent row per token, every decoder layer."""
    n = _get(cfg, "num_hidden_layers", source)
    rank = _get(cfg, "kv_lora_rank", source)
    rope = _get(cfg, "qk_rope_head_dim", source)
    heads = _get(cfg, "num_attention_heads", source)
    return (
        [
            MLALayer(f"model.layers.{i}.self_attn.attn", i, kv_lora_rank=rank, qk_rope_head_dim=rope)
            for i in range(n)
        ]
        if heads
        else []
    )


FAMILIES: dict[str, tuple[str, Deriver]] = {}


def _register(family: str, deriver: Deriver, *architectures: str) -> None:
    for arch in architectures:
        FAMILIES[arch] = (family, deriver)


_register(
    "dense",
    dense,
    "LlamaForCausalLM",
    "LLaMAForCausalLM",
    "MistralForCausalLM",
    "MixtralForCausalLM",
    "Phi3ForCausalLM",
    "Qwen3ForCausalLM",
    "Qwen3MoeForCausalLM",
    "GraniteForCausalLM",
    "GraniteMoeForCausalLM",
    "InternLMForCausalLM",
    "InternLM3ForCausalLM",
    "AquilaForCausalLM",
)
_register("dense", qwen2, "Qwen2ForCausalLM", "Qwen2MoeForCausalLM")
_register("sliding-window hybrid", alternating(2), "Gemma2ForCausalLM")
_register("sliding-window hybrid", alternating(6), "Gemma3ForCausalLM", "Gemma3ForConditionalGeneration")
_register("sliding-window hybrid", cohere2, "Cohere2ForCausalLM")
_register("sliding-window hybrid", gpt_oss, "GptOssForCausalLM")
_register("chunked local", llama4, "Llama4ForCausalLM", "Llama4ForConditionalGeneration")
_register(
    "mla", mla, "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "DeepseekForCausalLM", "KimiK2ForCausalLM"
)
# Mamba and linear-attention families, whose module loads only when one is planned.
MAMBA_FAMILIES = {
    "Qwen3NextForCausalLM": "linear-attention hybrid",
    "Qwen3_5ForCausalLM": "linear-attention hybrid",
    "Qwen3_5MoeForCausalLM": "linear-attention hybrid",
    "Qwen3_5ForConditionalGeneration": "linear-attention hybrid",
    "Qwen3_5MoeForConditionalGeneration": "linear-attention hybrid",
    "NemotronHForCausalLM": "mamba hybrid",
    "GraniteMoeHybridForCausalLM": "mamba hybrid",
    "JambaForCausalLM": "mamba hybrid",
    "FalconH1ForCausalLM": "mamba hybrid",
    "Mamba2ForCausalLM": "attention-free (mamba2)",
    "MambaForCausalLM": "attention-free (mamba)",
    "FalconMambaForCausalLM": "attention-free (mamba)",
}


def _mamba_deriver(arch: str) -> Deriver:
    def derive(cfg: Config, source: str, release: Release) -> list[Layer]:
        from kvplan import mamba

        return mamba.DERIVERS[arch](cfg, source, release)

    return derive


for _arch, _family in MAMBA_FAMILIES.items():
    _register(_family, _mamba_deriver(_arch), _arch)

# transformers' config defaults that vLLM sees when a published config omits the key.
_DEFAULT_MAX_LEN = {
    "Gemma3ForConditionalGeneration": 131072,  # Gemma3TextConfig.max_position_embeddings
    "Gemma3ForCausalLM": 131072,
}

# Architectures vLLM gained after 0.10: older releases do not know them.
_SINCE = {
    "Qwen3_5ForCausalLM": "0.17.0",
    "Qwen3_5MoeForCausalLM": "0.17.0",
    "Qwen3_5ForConditionalGeneration": "0.17.0",
    "Qwen3_5MoeForConditionalGeneration": "0.17.0",
}

# Multimodal wrappers keep the language model under another module prefix.
_PREFIXES = {
    "Qwen3_5ForConditionalGeneration": "language_model.model.layers",
    "Qwen3_5MoeForConditionalGeneration": "language_model.model.layers",
    "Gemma3ForConditionalGeneration": "language_model.model.layers",
    "Llama4ForConditionalGeneration": "language_model.model.layers",
}


def _text_config(cfg: Config, arch: str) -> Config:
    text = cfg.get("text_config")
    if isinstance(text, dict):
        merged = {**text}
        for key in ("torch_dtype", "dtype"):
            if key not in merged and key in cfg:
                merged[key] = cfg[key]
        return merged
    return cfg


def _architecture(cfg: Config, source: str) -> str:
    archs = cfg.get("architectures")
    if not archs:
        raise InputError(
            "has no 'architectures' entry",
            source=source,
            field="architectures",
            hint="add the HF architectures list, or describe the model with `layers:`",
        )
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise InputError("must be a list of names", source=source, field="architectures", value=archs)
    return archs[0]


MAX_LAYERS = 10_000  # far above any real model; keeps per-layer work bounded
MAX_MODEL_LEN = 1 << 30  # the bound --max-model-len has


def _layer_count(cfg: Config, source: str) -> int | None:
    """``num_hidden_layers`` when given, checked to be a sane layer count."""
    count = _get(cfg, "num_hidden_layers", source, default=None)
    if count is not None and count > MAX_LAYERS:
        raise InputError(
            f"is absurdly large for a layer count (over {MAX_LAYERS:,})",
            source=source,
            field="num_hidden_layers",
            value=count,
        )
    return count


def _max_len(cfg: Config, source: str, default: int | None) -> int | None:
    """``max_position_embeddings`` in tokens (``default`` when absent)."""
    value = cfg.get("max_position_embeddings")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MODEL_LEN:
        raise InputError(
            f"must be a whole number of tokens from 1 to {MAX_MODEL_LEN:,}",
            source=source,
            field="max_position_embeddings",
            value=value,
        )
    return value


def describe(model: ModelInput, release: Release) -> ModelDescription:
    """The model's layers and facts, derived for ``release``; refuses unknown families."""
    cfg = model.config
    source = model.source
    top_dtype = cfg.get("torch_dtype", cfg.get("dtype"))
    if model.layers is not None:
        dtype = model_dtype(
            canonical_dtype(top_dtype, field="torch_dtype", source=source) if top_dtype else None
        )
        from kvplan.layers_yaml import parse_layers

        layers = parse_layers(model.layers, source)
        count = _layer_count(cfg, source)
        n = count if count is not None else max((layer.index for layer in layers), default=-1) + 1
        archs = cfg.get("architectures")
        if archs is not None and (not isinstance(archs, list) or not all(isinstance(a, str) for a in archs)):
            raise InputError("must be a list of names", source=source, field="architectures", value=archs)
        return ModelDescription(
            architecture=str((archs or ["explicit layers"])[0]),
            family="explicit layers",
            num_hidden_layers=n,
            layers=tuple(layers),
            dtype=dtype,
            max_position_embeddings=_max_len(cfg, source, None),
            source=source,
            config=cfg,
        )
    arch = _architecture(cfg, source)
    if arch not in FAMILIES:
        raise InputError(
            f"architecture '{arch}' is not one kvplan can derive",
            source=source,
            field="architectures",
            hint="describe its layers explicitly with a `layers:` section (see README)",
        )
    since = _SINCE.get(arch)
    if since is not None and release.key < parse_version(since):
        raise InputError(
            f"vLLM {release.version} does not serve {arch}; it arrived in {since}",
            source=source,
            field="architectures",
            hint=f"plan with --vllm-version {since} or newer",
        )
    family, deriver = FAMILIES[arch]
    text = _text_config(cfg, arch)
    if arch in _PREFIXES:
        text = {**text, "_kvplan_prefix": _PREFIXES[arch]}
    dtype_raw = text.get("torch_dtype", text.get("dtype"))
    dtype = model_dtype(canonical_dtype(dtype_raw, field="torch_dtype", source=source) if dtype_raw else None)
    _layer_count(text, source)
    layers = deriver(text, source, release)
    return ModelDescription(
        architecture=arch,
        family=family,
        num_hidden_layers=_get(text, "num_hidden_layers", source),
        layers=tuple(layers),
        dtype=dtype,
        max_position_embeddings=_max_len(text, source, _DEFAULT_MAX_LEN.get(arch)),
        source=source,
        config=text,
    )
