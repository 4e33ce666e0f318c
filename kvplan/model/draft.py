"""Speculative decoding's draft layers: what the drafter adds to the KV cache.

vLLM builds the drafter on the last pipeline stage only (its model runner
creates the speculator there) and registers its attention layers after the
target's; each keeps its own KV cache, which joins the target's groups when
its spec equals theirs (the spec's ``is_draft`` flag is left out of equality)
and forms a group of its own otherwise.

* MTP (``method`` ``mtp`` or any ``*_mtp`` alias): the target's own extra
  layers, built from the target's config (``SpeculativeConfig.hf_config_override``):
  ``num_nextn_predict_layers`` decoder layers numbered after the target's
  (``deepseek_mtp.py`` and DeepSeek-V3.2's, ``glm4_moe_lite_mtp.py``; one for
  ``longcat_flash_mtp.py``, at twice LongCat's decoder layer count), or ``mtp.layers.{k}``
  (``qwen3_next_mtp.py``, ``qwen3_5_mtp.py``; also inside Qwen3.5's
  multimodal wrappers, without the wrapper's prefix).  Each draft layer is the
  target's layer kind (a DSA model's MTP layers always keep an indexer).
* EAGLE / EAGLE3 with a Llama-style head (``llama_eagle.py``,
  ``llama_eagle3.py``): the draft config's ``num_hidden_layers`` attention
  layers at ``model.layers.{start + i}``, with the draft's heads and head
  size; ``start`` is the target's layer count (EAGLE3) or the last stage's
  layer count (EAGLE: ``ModelConfig.get_num_layers`` on that rank).
* ``ngram``, ``ngram_gpu`` and ``suffix`` keep no KV cache.

Other drafters (separate draft models, DFlash, DSpark, EAGLE heads of other
architectures) are refused by name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kvplan.errors import InputError
from kvplan.inputs.speculative import SpeculativeConfig
from kvplan.model.config import Config, value
from kvplan.model.layers import AttentionLayer, Layer, MLAIndexerLayer, MLALayer, ModelDescription
from kvplan.records import record
from kvplan.releases import Release

FIELD = "speculative_config"


@record(frozen=True, eq=False)
class Draft:
    """The drafter's KV-cache layers and what kvplan says about them."""

    layers: tuple[Layer, ...]
    note: str
    # num_nextn_predict_layers of the draft config (1 unless an MTP drafter says otherwise)
    modules: int = 1


@record(frozen=True)
class _MTP:
    """How one target architecture's MTP drafter names and counts its layers."""

    drafter: str
    count_key: str | None  # None: always one layer
    count_default: int | None
    names: str  # format with {i}: the draft layer's attention module path (``...self_attn``)
    first: str  # "target" (after the target's layers), "zero" or "double" (2 x the decoder layers)


# Target text architecture -> its MTP drafter (vLLM 0.33.0 config/speculative.py).
MTP_DRAFTERS: dict[str, _MTP] = {
    "DeepseekV3ForCausalLM": _MTP(
        "DeepSeekMTP", "num_nextn_predict_layers", None, "model.layers.{i}.self_attn", "target"
    ),
    "DeepseekV32ForCausalLM": _MTP(
        "DeepseekV32MTP", "num_nextn_predict_layers", None, "model.layers.{i}.self_attn", "target"
    ),
    "GlmMoeDsaForCausalLM": _MTP(
        "DeepseekV32MTP", "num_nextn_predict_layers", None, "model.layers.{i}.self_attn", "target"
    ),
    "Glm4MoeLiteForCausalLM": _MTP(
        "Glm4MoeLiteMTP", "num_nextn_predict_layers", None, "model.layers.{i}.self_attn", "target"
    ),
    "LongcatFlashForCausalLM": _MTP("LongCatFlashMTP", None, 1, "model.layers.{i}.self_attn", "double"),
    "Qwen3NextForCausalLM": _MTP(
        "Qwen3NextMTP", "num_nextn_predict_layers", 1, "mtp.layers.{i}.self_attn", "zero"
    ),
    "Qwen3_5ForCausalLM": _MTP("Qwen3_5MTP", "mtp_num_hidden_layers", 1, "mtp.layers.{i}.self_attn", "zero"),
    "Qwen3_5MoeForCausalLM": _MTP(
        "Qwen3_5MoeMTP", "mtp_num_hidden_layers", 1, "mtp.layers.{i}.self_attn", "zero"
    ),
}

# The target's model_type a DeepSeek MTP drafter needs (hf_config_override rewrites only these).
_DEEPSEEK_MTP_TYPES = ("deepseek_v3", "deepseek_v32", "glm_moe_dsa")
_EAGLE_LLAMA = {
    "eagle": ("LlamaForCausalLM", "EagleLlamaForCausalLM", "LlamaForCausalLMEagle"),
    "eagle3": ("LlamaForCausalLM", "Eagle3LlamaForCausalLM", "LlamaForCausalLMEagle3"),
}


def _refuse(message: str, hint: str | None = None) -> InputError:
    return InputError(message, field=FIELD, hint=hint)


def _template(model: ModelDescription, kind: type[Layer]) -> Layer | None:
    """The target layer a draft layer copies: its first (for MLA: first leader) layer of ``kind``."""
    layers: list[Layer] = [layer for layer in model.layers if type(layer) is kind]
    if kind is MLALayer:
        leaders: list[Layer] = [x for x in layers if isinstance(x, MLALayer) and x.index_group_leader]
        layers = leaders or layers
    return layers[0] if layers else None


def _mtp(model: ModelDescription, text_arch: str, cfg: Config, release: Release) -> Draft:
    rule = MTP_DRAFTERS.get(text_arch)
    if rule is None:
        raise _refuse(
            f"no MTP drafter kvplan derives for {text_arch}",
            hint="MTP drafters kvplan knows: " + ", ".join(sorted(MTP_DRAFTERS)),
        )
    source = model.source
    if rule.drafter.startswith("DeepSeek") or rule.drafter == "DeepseekV32MTP":
        model_type = cfg.get("model_type")
        if model_type not in _DEEPSEEK_MTP_TYPES:
            raise _refuse(
                f"vLLM builds DeepSeek's MTP drafter only for model_type {', '.join(_DEEPSEEK_MTP_TYPES)}; "
                f"this config's model_type is {model_type!r}",
            )
    if rule.count_key is None:
        count = rule.count_default or 1
    else:
        count = value(cfg, rule.count_key, source, default=rule.count_default)
        if count is None:
            raise _refuse(f"the config has no MTP layers ({rule.count_key} is missing)")
    if not count:
        raise _refuse(f"the config has no MTP layers ({rule.count_key} = 0)")
    n = model.num_hidden_layers
    # LongCat's MTP layer follows 2 x its decoder count (num_layers from 0.32, num_hidden_layers before).
    first = {"target": n, "zero": 0, "double": 2 * n}[rule.first]
    layers: list[Layer] = []
    mla = _template(model, MLALayer)
    attention = next((layer for layer in model.layers if layer.kind == "full"), None)
    for k in range(count):
        index = first + k
        name = rule.names.format(i=index)
        if isinstance(mla, MLALayer):
            if mla.sparse:
                indexer = _template(model, MLAIndexerLayer)
                if indexer is None:
                    raise _refuse("a sparse MLA target without an indexer layer to copy")
                layers.append(replace(indexer, name=f"{name}.indexer.k_cache", index=index))
                layers.append(
                    replace(
                        mla,
                        name=f"{name}.attn",
                        index=index,
                        index_group_leader=release.behaviour.dsa_index_roles,
                    )
                )
            else:
                layers.append(replace(mla, name=f"{name}.attn", index=index))
        elif attention is not None:
            layers.append(replace(attention, name=f"{name}.attn", index=index))
        else:
            raise _refuse(f"no full-attention layer of {text_arch} for its MTP drafter to copy")
    modules = cfg.get("num_nextn_predict_layers", 1)
    return Draft(
        tuple(layers),
        f"{rule.drafter}: {count} MTP layer{'s' if count > 1 else ''} ({rule.count_key or 'always one'})",
        modules=modules if isinstance(modules, int) and not isinstance(modules, bool) else 1,
    )


def _eagle(model: ModelDescription, spec: SpeculativeConfig, last_stage_layers: int) -> Draft:
    from kvplan.inputs.models import resolve_model

    assert spec.model is not None
    draft = resolve_model(spec.model)
    cfg: dict[str, Any] = draft.config
    source = draft.source
    archs = cfg.get("architectures") or []
    arch = archs[0] if isinstance(archs, list) and archs else None
    if arch not in _EAGLE_LLAMA[spec.method] and not (arch is None and cfg.get("model_type") == "llama"):
        raise _refuse(
            f"the {spec.method} draft {arch!r} is not a Llama-style head kvplan derives",
            hint="kvplan derives EAGLE / EAGLE3 heads of llama_eagle.py / llama_eagle3.py",
        )
    types = cfg.get("layer_types")
    if cfg.get("sliding_window") or (isinstance(types, list) and set(types) - {"full_attention"}):
        raise _refuse("the draft head has sliding-window layers, which kvplan does not derive", hint=source)
    layers_n = value(cfg, "num_hidden_layers", source)
    heads = value(cfg, "num_attention_heads", source)
    kv = value(cfg, "num_key_value_heads", source, default=heads)
    hidden = value(cfg, "hidden_size", source)
    head = cfg.get("head_dim") or hidden // heads
    start = model.num_hidden_layers if spec.method == "eagle3" else last_stage_layers
    layers: list[Layer] = [
        AttentionLayer(
            f"model.layers.{start + i}.self_attn.attn",
            start + i,
            num_kv_heads=kv,
            head_size=int(head),
            num_attention_heads=heads,
        )
        for i in range(layers_n)
    ]
    return Draft(
        tuple(layers),
        f"{spec.method} head {arch or 'llama'} ({source}): {layers_n} layer{'s' if layers_n > 1 else ''}, "
        f"{kv} KV heads x {head}",
    )


def draft_layers(
    model: ModelDescription, spec: SpeculativeConfig, release: Release, last_stage_layers: int
) -> Draft:
    """The drafter's KV-cache layers for the target ``model`` (all on the last PP stage)."""
    if spec.method in ("ngram", "ngram_gpu", "suffix"):
        return Draft((), f"{spec.method}: the proposer keeps no KV cache")
    if spec.method == "mtp":
        text_arch = _text_architecture(model)
        return _mtp(model, text_arch, model.config, release)
    if spec.method in _EAGLE_LLAMA:
        return _eagle(model, spec, last_stage_layers)
    raise _refuse(
        f"kvplan does not derive the KV cache of the {spec.method!r} drafter",
        hint="derived: mtp (and its *_mtp aliases), eagle / eagle3 Llama heads, ngram, suffix",
    )


def _text_architecture(model: ModelDescription) -> str:
    """The text backbone vLLM built (the wrapped one for multimodal wrappers)."""
    from kvplan.model.registry import WRAPPERS

    wrapper = WRAPPERS.get(model.architecture)
    if wrapper is None:
        return model.architecture
    backbone = wrapper.backbone or ""
    if backbone not in _WRAPPED_MTP:
        raise _refuse(f"kvplan does not derive MTP drafters of multimodal {model.architecture}")
    return backbone


# Backbones whose MTP drafter keeps its own ``mtp.layers`` names inside a multimodal wrapper.
_WRAPPED_MTP = ("Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM")
