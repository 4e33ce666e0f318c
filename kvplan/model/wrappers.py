"""Backbone rules of wrappers that choose their text model from a config value.

Each function takes the wrapper's whole config and returns the text
architecture vLLM builds; ``Wrapper.select`` names it.
"""

from __future__ import annotations

from kvplan.errors import InputError
from kvplan.model.config import Config, value

# MiniCPM-V's classes by ``version`` (vllm/model_executor/models/minicpmv.py,
# ``_SUPPORT_VERSION`` and each class's ``init_llm``).
_MINICPMV = {
    (2, 0): "MiniCPMForCausalLM",
    (2, 5): "LlamaForCausalLM",
    (2, 6): "Qwen2ForCausalLM",
    (4, 0): "LlamaForCausalLM",
    (4, 5): "Qwen3ForCausalLM",
}
# MiniCPM-O's (minicpmo.py, ``_MINICPMO_SUPPORT_VERSION``).
_MINICPMO = {(2, 6): "Qwen2ForCausalLM", (4, 5): "Qwen3ForCausalLM"}


def _version(cfg: Config, source: str) -> tuple[int, ...]:
    raw = cfg.get("version")
    try:
        return tuple(int(part) for part in str(raw).split(".")[:2])
    except ValueError:
        raise InputError(
            "must be a dotted version such as 2.6", source=source, field="version", value=raw
        ) from None


def _pick(table: dict[tuple[int, int], str], version: tuple[int, ...], name: str, source: str) -> str:
    chosen = table.get((version[0], version[1])) if len(version) >= 2 else None
    if chosen is None:
        known = ", ".join(f"{a}.{b}" for a, b in sorted(table))
        raise InputError(
            f"{name} is served by vLLM only in versions {known}",
            source=source,
            field="version",
            value=".".join(map(str, version)),
        )
    return chosen


def minicpmv(cfg: Config, source: str) -> str:
    """MiniCPM-V: by ``version``; without one, 2.0 when hidden_size is 2304 and
    query_num 64, else 2.5 (``get_version_by_config``)."""
    if cfg.get("version") is None:
        old = cfg.get("hidden_size") == 2304 and cfg.get("query_num") == 64
        return _MINICPMV[(2, 0) if old else (2, 5)]
    return _pick(_MINICPMV, _version(cfg, source), "MiniCPMV", source)


def minicpmo(cfg: Config, source: str) -> str:
    """MiniCPM-O: by ``version``.  Without one vLLM picks its 2.6 class, whose
    MiniCPM-V base then reads the version as 2.0 or 2.5 and fails its check
    (minicpmo.py ``__new__``, minicpmv.py ``MiniCPMV2_6.__init__``)."""
    if cfg.get("version") is None:
        raise InputError(
            "is missing; vLLM cannot build MiniCPMO without it",
            source=source,
            field="version",
            hint="give the checkpoint's version (2.6 or 4.5)",
        )
    return _pick(_MINICPMO, _version(cfg, source), "MiniCPMO", source)


# Text configs a wrapper rewrites before building its backbone (``Wrapper.rewrite``):
# each takes the text config kvplan resolved and returns the one vLLM's backbone reads.


def cosmos3_edge(text: Config, source: str) -> Config:
    """Cosmos3 Edge's dense text model as Nemotron-H layers: an attention layer and an
    MLP layer for each of its ``num_hidden_layers`` (cosmos3_edge.py
    ``_to_nemotron_h_config``; up to 0.29 its own config class did the same)."""
    n = value(text, "num_hidden_layers", source)
    return {**text, "num_hidden_layers": 2 * n, "hybrid_override_pattern": "*-" * n}


def cohere_compass(text: Config, source: str) -> Config:
    """CohereCompassTextConfig: every layer full attention when ``layer_types`` is not
    given (``__post_init__``)."""
    if text.get("layer_types") is not None:
        return text
    n = value(text, "num_hidden_layers", source)
    return {**text, "layer_types": ["full_attention"] * n}


def nemotron_omni(text: Config, source: str) -> Config:
    """The Nemotron-H Omni names get no config fix-up in vLLM (``MODELS_CONFIG_MAP`` in
    model_executor/models/config.py lists only NemotronH_Nano_VL_V2), so the SSM state
    keeps ``--mamba-ssm-cache-dtype auto``: the model dtype, not Nemotron-H's float32
    default nor the text config's ``mamba_ssm_cache_dtype``."""
    from kvplan.dtypes import canonical_dtype, model_dtype

    raw = text.get("torch_dtype", text.get("dtype"))
    return {**text, "mamba_ssm_cache_dtype": model_dtype(canonical_dtype(raw) if raw else None)}
