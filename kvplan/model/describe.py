"""From a Hugging Face config to the model's KV-cache-holding layers.

One derivation per attention family, chosen by the config's ``architectures``
entry; an architecture kvplan does not know is refused, never guessed.  The
rules mirror how vLLM's model files build their attention layers (which layer
slides, which head size, the module path of each layer); each family lives in
``kvplan.model.families``.  An explicit ``layers:`` list in the model YAML
replaces derivation entirely.
"""

from __future__ import annotations

from collections.abc import Callable

from kvplan.dtypes import canonical_dtype, model_dtype
from kvplan.errors import InputError
from kvplan.inputs.models import ModelInput
from kvplan.model.config import Config, value
from kvplan.model.families.chunked import llama4
from kvplan.model.families.dense import dense, qwen2
from kvplan.model.families.mla import mla
from kvplan.model.families.sliding import alternating, cohere2, gpt_oss
from kvplan.model.layers import Layer, ModelDescription
from kvplan.releases import Release

Deriver = Callable[[Config, str, Release], list[Layer]]


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
        from kvplan.model.families import mamba

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
    count = value(cfg, "num_hidden_layers", source, default=None)
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
        from kvplan.model.explicit import parse_layers

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
    if not release.serves(since):
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
        num_hidden_layers=value(text, "num_hidden_layers", source),
        layers=tuple(layers),
        dtype=dtype,
        max_position_embeddings=_max_len(text, source, _DEFAULT_MAX_LEN.get(arch)),
        source=source,
        config=text,
    )
