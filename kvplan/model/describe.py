"""From a Hugging Face config to the model's KV-cache-holding layers.

One derivation per attention family, chosen by the config's ``architectures``
entry; an architecture kvplan does not know is refused, never guessed.  The
rules mirror how vLLM's model files build their attention layers (which layer
slides, which head size, the module path of each layer); each family lives in
``kvplan.model.families``.  An explicit ``layers:`` list in the model YAML
replaces derivation entirely.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import import_module

from kvplan.dtypes import canonical_dtype, model_dtype
from kvplan.errors import InputError
from kvplan.inputs.models import ModelInput
from kvplan.model.config import LENGTH_KEYS, Config, read_as, value
from kvplan.model.defaults import TEXT_DEFAULTS
from kvplan.model.layers import MambaLayer, ModelDescription
from kvplan.model.registry import (
    ARCHITECTURES,
    CAUSAL_LM,
    NOT_DERIVED,
    REFUSED,
    WRAPPED_TEXT,
    WRAPPERS,
    Wrapper,
)
from kvplan.releases import Release, parse_version


def _section(cfg: Config, paths: str | None) -> Config | None:
    """The first config section found at the dotted paths ``a|b`` (None: none is a mapping)."""
    for path in (paths or "").split("|") if paths else ():
        node: object = cfg
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return node
    return None


def _text_config(cfg: Config, wrapper: Wrapper, source: str) -> Config:
    """The backbone's keys as its config class sees them.

    The wrapper's text section (the top level when it has none), beneath it the
    defaults of the text config class for keys the file leaves out, and the
    model dtype as vLLM resolves it: the top level's ``torch_dtype`` first, the
    text section's only when the top level names none
    (``ModelArchConfigConvertorBase.get_torch_dtype``).
    """
    if wrapper.external and cfg.get(wrapper.external):
        raise InputError(
            "names another checkpoint whose config vLLM loads for the text model; "
            "kvplan reads only this config",
            source=source,
            field=wrapper.external,
            value=cfg[wrapper.external],
            hint="plan the text model's own config.json, or describe the layers with `layers:`",
        )
    section = _section(cfg, wrapper.text)
    if section is not None:
        text = dict(section)
        model_type = text.get("model_type") or wrapper.text_type
    else:
        text = dict(cfg)
        model_type = wrapper.text_type or cfg.get("model_type")
    defaults = TEXT_DEFAULTS.get(model_type, {}) if isinstance(model_type, str) else {}
    text = {
        **defaults,
        **(wrapper.text_defaults if section is not None and wrapper.text_defaults else {}),
        **text,
    }
    if section is not None and model_type and "model_type" not in text:
        text["model_type"] = model_type
    if section is not None:
        # The weights need the top level's quantization, vocabulary and vision tower
        # when the text section names none.
        for name in ("quantization_config", "vocab_size", "vision_config"):
            if name not in section and name in cfg:
                text[name] = cfg[name]
    for name in ("torch_dtype", "dtype"):
        if cfg.get(name) is not None:
            text["torch_dtype"] = cfg[name]
            break
    return text


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
    if name in REFUSED:
        return InputError(
            f"{what} '{name}' needs a KV cache kind kvplan does not derive: {REFUSED[name]}",
            source=source,
            field="architectures",
            hint="describe its layers explicitly with a `layers:` section (see README)",
        )
    why = f": {NOT_DERIVED[name]}" if name in NOT_DERIVED else ""
    return InputError(
        f"{what} '{name}' is not one kvplan can derive{why}",
        source=source,
        field="architectures",
        hint="describe its layers explicitly with a `layers:` section (see README)",
    )


def _for_release(wrapper: Wrapper, release: Release) -> Wrapper:
    """The wrapper as the release's model file has it (``Wrapper.before``)."""
    for until in sorted(wrapper.before or {}, key=parse_version, reverse=True):
        if release.serves(None, until):
            wrapper = replace(wrapper, **(wrapper.before or {})[until])
    return wrapper


def _nested(outer: str, own: str | None) -> str:
    """The layer path of a backbone built under a wrapper's module.

    vLLM puts the wrapper's module name in front of the backbone's own module
    path, so a backbone whose layers are not ``model.layers`` (OPT's
    ``model.decoder.layers``, Step3's ``.layers`` under an empty model prefix)
    keeps its own path beneath the wrapper's module.
    """
    if own is None or not outer.endswith("model.layers"):
        return outer
    module = outer[: -len("model.layers")]
    return module.rstrip(".") + own if own.startswith(".") else module + own


def _backbone(name: str, wrapper: Wrapper, cfg: Config, text: Config, source: str, release: Release) -> str:
    """The text architecture vLLM builds inside a wrapper (``with_hf_config``)."""
    if wrapper.backbone:
        return wrapper.backbone
    if wrapper.by_type:
        kind = (cfg if wrapper.type_of == "top" else text).get("model_type")
        chosen = wrapper.by_type.get(kind) if isinstance(kind, str) else None
        chosen = chosen or wrapper.by_type.get("*")
        if chosen:
            return chosen
    if wrapper.select:
        from kvplan.model import wrappers

        return str(getattr(wrappers, wrapper.select)(cfg, source))
    archs = text.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    model_type = text.get("model_type")
    if wrapper.untyped and isinstance(model_type, str) and model_type in wrapper.untyped:
        return wrapper.untyped[model_type]
    if isinstance(model_type, str) and model_type in CAUSAL_LM:
        if not release.behaviour.wrapper_causal_lm_fallback:
            raise InputError(
                f"vLLM {release.version} builds {name}'s text model only from the text config's "
                "architectures, and this config names none (the model_type fallback came in 0.20.0)",
                source=source,
                field=f"{wrapper.text.split('|')[0]}.architectures" if wrapper.text else "architectures",
                hint=f"add architectures: [{CAUSAL_LM[model_type]}] to the text config, or plan with 0.20 or newer",
            )
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


# What vLLM assumes when the config gives none of LENGTH_KEYS (_get_and_verify_max_len).
DEFAULT_MAX_LEN = 2048


def _length(cfg: Config, key: str, source: str) -> int | None:
    value = cfg.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MODEL_LEN:
        raise InputError(
            f"must be a whole number of tokens from 1 to {MAX_MODEL_LEN:,}",
            source=source,
            field=key,
            value=value,
        )
    return value


def _max_len(cfg: Config, source: str, default: int | None, fallback: int | None = None) -> int | None:
    """The model's length in tokens as vLLM derives it from the config; ``default``
    stands in for ``max_position_embeddings`` when the config omits it (the config
    class's default), ``fallback`` when no length is found at all."""
    if (override := _length(cfg, "model_max_length", source)) is not None:
        return override
    found = [v for key in LENGTH_KEYS if (v := _length(cfg, key, source)) is not None]
    if "max_position_embeddings" not in cfg and default is not None:
        found.append(default)
    return min(found) if found else fallback


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
    model_type = cfg.get("model_type")
    defaults = TEXT_DEFAULTS.get(model_type, {}) if isinstance(model_type, str) else {}
    text, backbone = {**defaults, **cfg}, arch
    wrapper = WRAPPERS.get(arch)
    if wrapper is not None:
        _available(arch, wrapper.since, wrapper.until, release, source)
        wrapper = _for_release(wrapper, release)
        text = _text_config(cfg, wrapper, source)
        if wrapper.rewrite:
            from kvplan.model import wrappers

            text = getattr(wrappers, wrapper.rewrite)(text, source)
        backbone = _backbone(arch, wrapper, cfg, text, source, release)
    entry = ARCHITECTURES.get(backbone) or (WRAPPED_TEXT.get(backbone) if wrapper is not None else None)
    if wrapper is not None and entry is not None:
        prefix = {"prefix": _nested(wrapper.prefix, entry.options.get("prefix"))}
    if entry is None:
        raise (
            _unknown(arch, source) if backbone == arch else _unknown(backbone, source, f"{arch}'s text model")
        )
    since = entry.since if wrapper is not None else entry.registered or entry.since
    _available(backbone, since, entry.until, release, source)
    if not release.serves(entry.v1_since):
        raise InputError(
            f"vLLM {release.version} builds {backbone} only on its V0 engine (the model class is "
            f"V0-only) and kvplan plans the V1 engine, which builds it from {entry.v1_since}",
            source=source,
            field="architectures",
            hint=f"plan with --vllm-version {entry.v1_since} or newer",
        )
    if entry.keys or entry.defaults:
        own_class = text.get("model_type") in (None, entry.model_type)
        text = read_as(text, entry.keys, entry.defaults if own_class else {})
    dtype_raw = text.get("torch_dtype") or text.get("dtype")
    dtype = model_dtype(canonical_dtype(dtype_raw, field="torch_dtype", source=source) if dtype_raw else None)
    _layer_count(text, source)
    module, function = entry.derive.split(":")
    deriver = getattr(import_module(f"kvplan.model.families.{module}"), function)
    layers = deriver(text, source, release, **{**entry.options, **prefix})
    if not release.behaviour.v1_recurrent and any(isinstance(layer, MambaLayer) for layer in layers):
        raise InputError(
            f"vLLM {release.version} serves {backbone}, a model with recurrent state, on its V0 "
            "engine unless VLLM_USE_V1=1 is set, and kvplan plans only the V1 engine",
            source=source,
            field="architectures",
            hint="plan with --vllm-version 0.10.2 or newer, where V1 serves it by default",
        )
    # Configs without num_hidden_layers (Whisper's name them per side) count the derived layers.
    count = value(text, "num_hidden_layers", source, default=None)
    return ModelDescription(
        architecture=arch,
        family=entry.family,
        num_hidden_layers=(
            count
            if count and entry.layers_key != "derived"
            else max((layer.index for layer in layers), default=-1) + 1
        ),
        layers=tuple(layers),
        dtype=dtype,
        max_position_embeddings=_max_len(text, source, entry.max_len, DEFAULT_MAX_LEN),
        source=source,
        config=text,
    )
