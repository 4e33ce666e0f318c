"""From a Hugging Face config to the model's KV-cache-holding layers.

One derivation per attention family, chosen by the config's ``architectures``
entry; an architecture kvplan does not know is refused, never guessed.  The
rules mirror how vLLM's model files build their attention layers (which layer
slides, which head size, the module path of each layer); each family lives in
``kvplan.model.families``.  An explicit ``layers:`` list in the model YAML
replaces derivation entirely.
"""

from __future__ import annotations

from importlib import import_module

from kvplan.dtypes import canonical_dtype, model_dtype
from kvplan.errors import InputError
from kvplan.inputs.models import ModelInput
from kvplan.model.config import Config, read_as, value
from kvplan.model.layers import ModelDescription
from kvplan.model.registry import ARCHITECTURES, CAUSAL_LM, WRAPPERS, Wrapper
from kvplan.releases import Release


def _text_config(cfg: Config, key: str | None) -> Config:
    """The backbone's keys: ``cfg[key]`` (the top level when None or absent), with the
    top level's dtype when the text config names none."""
    text = cfg.get(key) if key else None
    if isinstance(text, dict):
        merged = {**text}
        for name in ("torch_dtype", "dtype"):
            if name not in merged and name in cfg:
                merged[name] = cfg[name]
        return merged
    return cfg


def _available(name: str, since: str | None, until: str | None, release: Release, source: str) -> None:
    """Refuse an architecture the release's registry does not hold, as vLLM would."""
    if not release.serves(since):
        raise InputError(
            f"vLLM {release.version} does not serve {name}; it arrived in {since}",
            source=source,
            field="architectures",
            hint=f"plan with --vllm-version {since} or newer",
        )
    if not release.serves(None, until):
        raise InputError(
            f"vLLM {release.version} no longer serves {name}; it was removed in {until}",
            source=source,
            field="architectures",
            hint=f"plan with a --vllm-version before {until}",
        )


def _unknown(name: str, source: str, what: str = "architecture") -> InputError:
    return InputError(
        f"{what} '{name}' is not one kvplan can derive",
        source=source,
        field="architectures",
        hint="describe its layers explicitly with a `layers:` section (see README)",
    )


def _backbone(name: str, wrapper: Wrapper, text: Config, source: str) -> str:
    """The text architecture vLLM builds inside a wrapper (``with_hf_config``)."""
    if wrapper.backbone:
        return wrapper.backbone
    archs = text.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    model_type = text.get("model_type")
    if isinstance(model_type, str) and model_type in CAUSAL_LM:
        return CAUSAL_LM[model_type]
    raise InputError(
        f"cannot tell which text model {name} wraps (text config model_type {model_type!r})",
        source=source,
        field=f"{wrapper.text}.model_type" if wrapper.text else "model_type",
        hint="give the text config's architectures",
    )


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


# The config keys vLLM takes the model's length from (the smallest one given), in its
# order (ModelArchConfigConvertor.derive_max_model_len_and_key); model_max_length wins.
MAX_LEN_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)


# What vLLM assumes when the config gives none of MAX_LEN_KEYS (_get_and_verify_max_len).
DEFAULT_MAX_LEN = 2048


def _max_len(cfg: Config, source: str, default: int | None) -> int | None:
    """The model's length in tokens as vLLM derives it from the config (``default``
    when no key gives one): ``model_max_length`` if set, else the smallest of
    ``MAX_LEN_KEYS``."""
    found: dict[str, int] = {}
    for key in MAX_LEN_KEYS:
        value = cfg.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MODEL_LEN:
            raise InputError(
                f"must be a whole number of tokens from 1 to {MAX_MODEL_LEN:,}",
                source=source,
                field=key,
                value=value,
            )
        found[key] = value
    if "model_max_length" in found:
        return found["model_max_length"]
    return min(found.values(), default=default)


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
    prefix: dict[str, str] = {}
    text, backbone = cfg, arch
    wrapper = WRAPPERS.get(arch)
    if wrapper is not None:
        _available(arch, wrapper.since, wrapper.until, release, source)
        text = _text_config(cfg, wrapper.text)
        backbone = _backbone(arch, wrapper, text, source)
        prefix = {"prefix": wrapper.prefix}
    entry = ARCHITECTURES.get(backbone)
    if entry is None:
        raise (
            _unknown(arch, source) if backbone == arch else _unknown(backbone, source, f"{arch}'s text model")
        )
    _available(backbone, entry.since, entry.until, release, source)
    if entry.keys or entry.defaults:
        own_class = text.get("model_type") in (None, entry.model_type)
        text = read_as(text, entry.keys, entry.defaults if own_class else {})
    dtype_raw = text.get("torch_dtype", text.get("dtype"))
    dtype = model_dtype(canonical_dtype(dtype_raw, field="torch_dtype", source=source) if dtype_raw else None)
    _layer_count(text, source)
    module, function = entry.derive.split(":")
    deriver = getattr(import_module(f"kvplan.model.families.{module}"), function)
    layers = deriver(text, source, release, **entry.options, **prefix)
    return ModelDescription(
        architecture=arch,
        family=entry.family,
        num_hidden_layers=value(text, "num_hidden_layers", source),
        layers=tuple(layers),
        dtype=dtype,
        max_position_embeddings=_max_len(text, source, entry.max_len or DEFAULT_MAX_LEN),
        source=source,
        config=text,
    )
