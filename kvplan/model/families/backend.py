"""Architectures vLLM serves through its Transformers backend
(``vllm/model_executor/models/transformers/``, ``_TRANSFORMERS_SUPPORTED_MODELS``).

The backend builds the transformers model and gives every decoder layer one
vLLM ``Attention``: from 0.32 named after the transformers attention module
it serves (``model.layers.{i}.self_attn.attn`` for most), before that
``{i}.attn``.  Its head size and KV heads are vLLM's model-wide ones
(``ModelConfig.get_head_size`` and ``get_total_num_kv_heads``), and a layer
slides when ``layer_types[i]`` says so, as transformers' config class fills
``layer_types`` in.  Releases before the name moved to the backend built
vLLM's own model file (``native``).
"""

from __future__ import annotations

from typing import Any

from kvplan.errors import InputError
from kvplan.model.config import Config, layer_types, value
from kvplan.model.families.dense import dense
from kvplan.model.layers import Layer
from kvplan.releases import Release


def _types(cfg: Config, source: str, n: int, pattern: str | None) -> list[str] | None:
    """``layer_types`` as the config class fills it in when config.json has none.

    ``full_every:P:O``: layer i is full when ``(i + O) % P == 0``, else sliding;
    ``full``: every layer full; ``smollm3``: sliding on the NoPE layers when
    ``use_sliding_window``.
    """
    given = layer_types(cfg, source, n)
    if given is not None or pattern is None:
        return given
    if pattern == "full":
        return ["full_attention"] * n
    if pattern.startswith("full_every:"):
        period, offset = (int(x) for x in pattern.split(":")[1:])
        return ["full_attention" if (i + offset) % period == 0 else "sliding_attention" for i in range(n)]
    if pattern == "smollm3":
        interval = value(cfg, "no_rope_layer_interval", source, default=4)
        no_rope = cfg.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(n)]
        if not isinstance(no_rope, list) or len(no_rope) != n:
            raise InputError(f"must list {n} entries", source=source, field="no_rope_layers", value=no_rope)
        slides = bool(cfg.get("use_sliding_window")) and cfg.get("sliding_window") is not None
        return ["sliding_attention" if slides and not no_rope[i] else "full_attention" for i in range(n)]
    raise ValueError(f"unknown layer pattern {pattern!r}")  # a registry mistake, not a user's


def backend(
    cfg: Config,
    source: str,
    release: Release,
    *,
    prefix: str = "model.layers",
    attn: str = "self_attn",
    kv: str = "arch_config",
    pattern: str | None = None,
    moved: str | None = None,
    native: dict[str, Any] | None = None,
    native_before: dict[str, dict[str, Any]] | None = None,
) -> list[Layer]:
    """One attention layer per decoder layer, at ``{prefix}.{i}.{attn}.attn`` (0.32+)
    or ``{i}.attn``.

    ``moved``: the first release that serves the name through the backend;
    before it, ``native`` are the ``dense`` options of vLLM's own model file
    (None: not derived there), with ``native_before[r]`` replacing some of them
    on releases before ``r``.
    """
    n = value(cfg, "num_hidden_layers", source)
    types = _types(cfg, source, n, pattern)
    if moved is not None and not release.serves(moved):
        if native is None:
            raise InputError(
                f"vLLM {release.version} builds this architecture from its own model file, "
                f"which kvplan does not derive (it follows the Transformers backend from {moved})",
                source=source,
                field="architectures",
                hint=f"plan with --vllm-version {moved} or newer, or describe the layers with `layers:`",
            )
        return dense({**cfg, "layer_types": types}, source, release, before=native_before, **native)
    if cfg.get("kv_lora_rank") is not None:
        raise InputError(
            "latent attention (kv_lora_rank) through the Transformers backend is not derived",
            source=source,
            field="kv_lora_rank",
        )
    named = release.behaviour.backend_module_names
    return dense(
        {**cfg, "layer_types": types},
        source,
        release,
        prefix=prefix if named else "",
        attn=f"{attn}.attn" if named else "attn",
        head="arch_config",
        kv=kv,
        window="layers",
    )
