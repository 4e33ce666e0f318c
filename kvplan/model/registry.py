"""Which vLLM architectures kvplan derives, and how: data, one entry per name.

An ``Entry`` names the family (the label shown), the deriver
(``module:function`` under ``kvplan.model.families``, imported only when a
model of that family is planned), the deriver's options, and the vLLM
releases that register the name.  A ``Wrapper`` is a multimodal (or
otherwise wrapping) architecture whose KV cache layers are those of a text
backbone: it says where the backbone's config keys live, which backbone vLLM
builds, and the module path vLLM puts in front of its layers.

An architecture in neither table is refused by name, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """A text architecture kvplan derives.

    ``options`` are keyword arguments for the deriver; ``since`` / ``until``
    are the first vLLM release that registers the name and the first that no
    longer does (None: always had it / still has it).  ``max_len`` is the
    ``max_position_embeddings`` transformers' config class supplies when a
    config.json omits it.
    """

    family: str
    derive: str
    options: dict[str, Any] = field(default_factory=dict)
    since: str | None = None
    until: str | None = None
    max_len: int | None = None


@dataclass(frozen=True)
class Wrapper:
    """An architecture that wraps a text backbone (vLLM's ``init_vllm_registered_model``).

    ``text``: the dotted path of the config section holding the backbone's keys
    (``text_config``, ``llm_config``, ``thinker_config.text_config``, ...); when
    that section is absent, or ``text`` is None, the keys are read from the top
    level, as transformers' ``get_text_config()`` does for configs saved flat.
    ``text_type``: the text ``model_type`` the wrapper's config class assumes
    when its text section names none (its class defaults then apply);
    ``text_defaults``: values the wrapper's config class puts beneath a given
    text section (above the text class's own defaults).

    The backbone vLLM builds: ``backbone`` when the wrapper hard-codes it; else
    ``by_type`` keyed by the text ``model_type`` (or the top level's when
    ``type_of`` is ``"top"``; ``"*"`` matches any other); else ``select``, a
    function of ``kvplan.model.wrappers`` for rules of their own; else the text
    section's ``architectures``; else ``untyped`` keyed by the text
    ``model_type`` (the wrapper's own fix-up for text configs naming no
    architectures, in every release); else transformers' causal-LM class for its
    ``model_type`` (``CAUSAL_LM``, from vLLM 0.20).

    ``prefix``: the module path of the backbone's decoder layers (what replaces
    the backbone's own ``model.layers``).  ``external``: a config key naming
    another checkpoint whose config vLLM loads for the text model instead (kvplan
    cannot read it, so it refuses); ``text`` may list alternatives as ``a|b``.
    """

    prefix: str = "language_model.model.layers"
    text: str | None = "text_config"
    backbone: str | None = None
    by_type: dict[str, str] | None = None
    type_of: str = "text"
    select: str | None = None
    text_type: str | None = None
    untyped: dict[str, str] | None = None
    text_defaults: dict[str, Any] | None = None
    external: str | None = None
    since: str | None = None
    until: str | None = None


def _entries(family: str, derive: str, names: tuple[str, ...], **kw: Any) -> dict[str, Entry]:
    return {name: Entry(family, derive, **kw) for name in names}


# One table per KV cache family (vLLM 0.33.0's registry names).

_FULL_ATTENTION: dict[str, Entry] = {
    **_entries(
        "dense",
        "dense:dense",
        (
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
        ),
    ),
    **_entries("dense", "dense:qwen2", ("Qwen2ForCausalLM", "Qwen2MoeForCausalLM")),
}

_SLIDING_WINDOW: dict[str, Entry] = {
    "Gemma2ForCausalLM": Entry("sliding-window hybrid", "sliding:alternating", {"period": 2}),
    "Gemma3ForCausalLM": Entry("sliding-window hybrid", "sliding:alternating", {"period": 6}, max_len=131072),
    "Cohere2ForCausalLM": Entry("sliding-window hybrid", "sliding:cohere2"),
    "GptOssForCausalLM": Entry("sliding-window hybrid", "sliding:gpt_oss", since="0.10.1"),
    # layer_types[i] == "sliding_attention" slides (the config class's pattern when the
    # file has no layer_types); other layers take vLLM's model-wide window, if any.
    "AfmoeForCausalLM": Entry("sliding-window hybrid", "sliding:typed", {"rule": "afmoe"}, since="0.11.1"),
    "ApertusForCausalLM": Entry("sliding-window hybrid", "dense:dense", since="0.10.2"),
    "Exaone4ForCausalLM": Entry("sliding-window hybrid", "sliding:typed", {"rule": "exaone4"}),
    "ExaoneMoeForCausalLM": Entry(
        "sliding-window hybrid",
        "sliding:typed",
        {"rule": "exaone4", "windows_key": "sliding_windows"},
        since="0.27.0",
    ),
    # The pre-0.27 spelling, registered again from 0.32 (0.14 - 0.26 served it too).
    "ExaoneMoEForCausalLM": Entry(
        "sliding-window hybrid",
        "sliding:typed",
        {"rule": "exaone4", "windows_key": "sliding_windows"},
        since="0.32.0",
    ),
    "Cohere2MoeForCausalLM": Entry(
        "sliding-window hybrid",
        "sliding:typed",
        {"rule": "cohere2_moe", "plus_one": "cohere2_window_plus_one"},
        since="0.21.0",
    ),
    "LagunaForCausalLM": Entry(
        "sliding-window hybrid",
        "sliding:typed",
        {"rule": "all_full", "own_window": True, "per_layer_heads": "num_attention_heads_per_layer"},
        since="0.21.0",
    ),
    "GraniteSWAForCausalLM": Entry(
        "sliding-window hybrid", "sliding:typed", {"rule": "granite_swa"}, since="0.29.0"
    ),
    # granitemoe.py GraniteMoeAttention: head size hidden / heads.
    "GraniteMoeSWAForCausalLM": Entry(
        "sliding-window hybrid", "sliding:typed", {"rule": "granite_swa", "head_key": False}, since="0.29.0"
    ),
    "MuseGlimmerForCausalLM": Entry(
        "sliding-window hybrid", "sliding:typed", {"rule": "muse_glimmer"}, since="0.28.0"
    ),
    # vllm/models/beam (clears the model-wide window) and vllm/models/flint.
    "BeamForCausalLM": Entry(
        "sliding-window hybrid", "sliding:typed", {"rule": "all_sliding", "own_window": True}, since="0.33.0"
    ),
    "FlintForCausalLM": Entry("sliding-window hybrid", "sliding:typed", {"rule": "all_full"}, since="0.33.0"),
    "MiMoV2FlashForCausalLM": Entry("sliding-window hybrid", "sliding:mimo_v2", since="0.14.0"),
    "MiMoV2ForCausalLM": Entry("sliding-window hybrid", "sliding:mimo_v2", since="0.21.0"),
}

_CHUNKED_LOCAL: dict[str, Entry] = {
    "Llama4ForCausalLM": Entry("chunked local", "chunked:llama4"),
}

_MLA: dict[str, Entry] = {
    **_entries(
        "mla",
        "mla:mla",
        ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "DeepseekForCausalLM", "KimiK2ForCausalLM"),
    ),
}

_RECURRENT: dict[str, Entry] = {
    "Qwen3NextForCausalLM": Entry("linear-attention hybrid", "mamba:qwen3_next"),
    **_entries(
        "linear-attention hybrid",
        "mamba:qwen3_next",
        ("Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM"),
        since="0.17.0",
    ),
    "NemotronHForCausalLM": Entry("mamba hybrid", "mamba:nemotron_h"),
    "GraniteMoeHybridForCausalLM": Entry("mamba hybrid", "mamba:granite_h"),
    "JambaForCausalLM": Entry("mamba hybrid", "mamba:jamba"),
    "FalconH1ForCausalLM": Entry("mamba hybrid", "mamba:falcon_h1"),
    "Mamba2ForCausalLM": Entry("attention-free (mamba2)", "mamba:mamba2_only"),
    "MambaForCausalLM": Entry("attention-free (mamba)", "mamba:mamba1_only"),
    "FalconMambaForCausalLM": Entry("attention-free (mamba)", "mamba:mamba1_only"),
}

# Multimodal architectures that build their own text model (not a registered one).
_MULTIMODAL_TEXT: dict[str, Entry] = {
    # molmo.py MolmoAttention: head size hidden / heads (head_dim ignored).
    "MolmoForCausalLM": Entry("dense", "dense:dense", {"head_key": False}),
}

ARCHITECTURES: dict[str, Entry] = {
    **_FULL_ATTENTION,
    **_SLIDING_WINDOW,
    **_CHUNKED_LOCAL,
    **_MLA,
    **_RECURRENT,
    **_MULTIMODAL_TEXT,
}


def _wrappers(names: tuple[str, ...], **kw: Any) -> dict[str, Wrapper]:
    return {name: Wrapper(**kw) for name in names}


# What transformers' GlmAsrConfig and VoxtralConfig put beneath a given
# text_config (configuration_glmasr.py, configuration_voxtral.py: the
# text_config SubConfigSpec's init_kwargs, merged under the file's section).
_GLMASR_TEXT = {
    "hidden_size": 2048,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "max_position_embeddings": 8192,
}
_VOXTRAL_TEXT = {
    "hidden_size": 3072,
    "num_hidden_layers": 30,
    "num_key_value_heads": 8,
    "max_position_embeddings": 131072,
    "head_dim": 128,
}

_MISTRAL = {"mistral": "MistralForCausalLM"}

# Wrappers around full-attention or sliding-window text models, as vLLM 0.33.0's
# model files build them (vllm/model_executor/models/<module>.py; the call to
# init_vllm_registered_model, or the text model class built directly).
_MULTIMODAL: dict[str, Wrapper] = {
    "Gemma3ForConditionalGeneration": Wrapper(backbone="Gemma3ForCausalLM"),
    "Llama4ForConditionalGeneration": Wrapper(backbone="Llama4ForCausalLM"),
    # Qwen2 text model, which reads get_text_config(): the whole config is passed
    # (qwen2_vl.py, qwen2_5_vl.py) or its text section.
    "Qwen2VLForConditionalGeneration": Wrapper(backbone="Qwen2ForCausalLM", text_type="qwen2_vl_text"),
    "Qwen2_5_VLForConditionalGeneration": Wrapper(backbone="Qwen2ForCausalLM", text_type="qwen2_5_vl_text"),
    "Qwen2AudioForConditionalGeneration": Wrapper(backbone="Qwen2ForCausalLM", text_type="qwen2"),
    **_wrappers(
        ("Qwen2_5OmniModel", "Qwen2_5OmniForConditionalGeneration"),
        backbone="Qwen2ForCausalLM",
        text="thinker_config.text_config",
    ),
    "AudioFlamingo3ForConditionalGeneration": Wrapper(backbone="Qwen2ForCausalLM", since="0.13.0"),
    "BagelForConditionalGeneration": Wrapper(backbone="Qwen2ForCausalLM", text="llm_config", since="0.13.0"),
    "DotsOCRForCausalLM": Wrapper(backbone="Qwen2ForCausalLM", text=None, since="0.11.0"),
    "OpenCUAForConditionalGeneration": Wrapper(backbone="Qwen2ForCausalLM", since="0.12.0"),
    "MiDashengLMModel": Wrapper(prefix="decoder.model.layers", backbone="Qwen2ForCausalLM", since="0.10.2"),
    "MoonshotKimiaForCausalLM": Wrapper(backbone="Qwen2ForCausalLM", text=None, since="0.18.0"),
    "FireRedASR2ForConditionalGeneration": Wrapper(
        prefix="model.decoder.model.layers", backbone="Qwen2ForCausalLM", since="0.17.0"
    ),
    # Qwen3 text model (Qwen3VL's Qwen3LLMForCausalLM and the like subclass it
    # without touching attention).
    "Qwen3VLForConditionalGeneration": Wrapper(
        backbone="Qwen3ForCausalLM", text_type="qwen3_vl_text", since="0.11.0"
    ),
    "Qwen3VLMoeForConditionalGeneration": Wrapper(
        backbone="Qwen3MoeForCausalLM", text_type="qwen3_vl_moe_text", since="0.11.0"
    ),
    "Qwen3OmniMoeForConditionalGeneration": Wrapper(
        backbone="Qwen3MoeForCausalLM", text="thinker_config.text_config", since="0.11.1"
    ),
    "InternS1ProForConditionalGeneration": Wrapper(backbone="Qwen3MoeForCausalLM", since="0.16.0"),
    "Qwen3ASRForConditionalGeneration": Wrapper(
        backbone="Qwen3ForCausalLM", text="thinker_config.text_config", since="0.16.0"
    ),
    "Qwen3ASRRealtimeGeneration": Wrapper(
        backbone="Qwen3ForCausalLM", text="thinker_config.text_config", since="0.17.0"
    ),
    "KeyeForConditionalGeneration": Wrapper(backbone="Qwen3ForCausalLM"),
    "KeyeVL1_5ForConditionalGeneration": Wrapper(backbone="Qwen3ForCausalLM", since="0.10.2"),
    "IsaacForConditionalGeneration": Wrapper(backbone="Qwen3ForCausalLM", since="0.14.0"),
    "FunAudioChatForConditionalGeneration": Wrapper(backbone="Qwen3ForCausalLM", since="0.16.0"),
    "FunASRForConditionalGeneration": Wrapper(
        prefix="model.decoder.layers", backbone="Qwen3ForCausalLM", since="0.17.0"
    ),
    "Cosmos3ForConditionalGeneration": Wrapper(backbone="Qwen3ForCausalLM", since="0.23.0"),
    "MossAudioModel": Wrapper(backbone="Qwen3ForCausalLM", text="language_config", since="0.24.0"),
    "MossTranscribeDiarizeForConditionalGeneration": Wrapper(backbone="Qwen3ForCausalLM", since="0.25.0"),
    "LlavaOnevision2ForConditionalGeneration": Wrapper(backbone="Qwen3ForCausalLM", since="0.25.0"),
    "Alpamayo2Super": Wrapper(backbone="Qwen3ForCausalLM", since="0.33.0"),
    # Llama text model: through init_vllm_registered_model, or LlamaModel built
    # directly under the wrapper's own module path.
    "GlmAsrForConditionalGeneration": Wrapper(
        backbone="LlamaForCausalLM", text_type="llama", text_defaults=_GLMASR_TEXT, since="0.14.0"
    ),
    "KananaVForConditionalGeneration": Wrapper(
        prefix="model.model.layers", backbone="LlamaForCausalLM", since="0.14.0"
    ),
    "Phi3VForCausalLM": Wrapper(prefix="model.layers", backbone="LlamaForCausalLM", text=None),
    "Phi4MMForCausalLM": Wrapper(prefix="model.layers", backbone="LlamaForCausalLM", text=None),
    "Phi4ForCausalLMV": Wrapper(backbone="Phi3ForCausalLM", text=None, since="0.20.0"),
    **_wrappers(
        ("Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration"),
        prefix="model.text_model.layers",
        backbone="LlamaForCausalLM",
        text_type="llama",
    ),
    "AriaForConditionalGeneration": Wrapper(backbone="LlamaForCausalLM"),
    # Granite text model (granite4_vision.py Granite4VisionLLMForCausalLM subclasses it).
    "Granite4VisionForConditionalGeneration": Wrapper(backbone="GraniteForCausalLM", since="0.20.0"),
    # The text section's architectures, else transformers' causal-LM class for
    # its model_type (text_type: the model_type the config class assumes).
    # llava.py (and mistral3.py up to 0.19) give a Mistral text config without
    # architectures MistralForCausalLM themselves (HF-format Pixtral-12B); later
    # the model_type fallback gives Mistral3 the same.
    "LlavaForConditionalGeneration": Wrapper(text_type="llama", untyped=_MISTRAL),
    **_wrappers(
        ("LlavaNextForConditionalGeneration", "LlavaNextVideoForConditionalGeneration"),
        text_type="llama",
    ),
    "LlavaOnevisionForConditionalGeneration": Wrapper(text_type="qwen2"),
    "BeeForConditionalGeneration": Wrapper(text_type="qwen2", since="0.11.1"),
    "RForConditionalGeneration": Wrapper(text_type="qwen2", since="0.10.2"),
    "Mistral3ForConditionalGeneration": Wrapper(text_type="mistral", untyped=_MISTRAL),
    "LightOnOCRForConditionalGeneration": Wrapper(text_type="mistral", since="0.11.1"),
    "PixtralForConditionalGeneration": Wrapper(),
    "VoxtralForConditionalGeneration": Wrapper(text_type="llama", text_defaults=_VOXTRAL_TEXT),
    "UltravoxModel": Wrapper(text_type="llama", external="text_model_id"),
    "GraniteSpeechForConditionalGeneration": Wrapper(text_type="granite"),
    "GraniteSpeechPlusForConditionalGeneration": Wrapper(text_type="granite", since="0.23.0"),
    "OpenVLAForActionPrediction": Wrapper(text_type="llama", since="0.22.0"),
    "Cohere2VisionForConditionalGeneration": Wrapper(text_type="cohere2", since="0.10.1"),
    "Eagle2_5_VLForConditionalGeneration": Wrapper(since="0.15.1"),
    "InternVLForConditionalGeneration": Wrapper(text_type="qwen2", since="0.10.2"),
    "InternS1ForConditionalGeneration": Wrapper(text_type="qwen2", since="0.10.1"),
    # InternVL-style configs keep the text model under llm_config (vLLM maps it
    # to text_config: transformers_utils/config.py _CONFIG_ATTRS_MAPPING).
    **_wrappers(
        ("InternVLChatModel", "H2OVLChatModel", "NVLM_D", "SkyworkR1VChatModel", "Llama_Nemotron_Nano_VL"),
        text="llm_config|text_config",
    ),
    "QianfanOCRForConditionalGeneration": Wrapper(text="llm_config|text_config", since="0.21.0"),
    "Ovis": Wrapper(prefix="llm.model.layers", text="llm_config|text_config"),
    "Ovis2_5": Wrapper(prefix="llm.model.layers", text="llm_config|text_config", since="0.10.2"),
    **_wrappers(
        ("Ovis2_6ForCausalLM", "Ovis2_6_MoeForCausalLM"),
        prefix="llm.model.layers",
        text="llm_config|text_config",
        since="0.17.0",
    ),
    "PaliGemmaForConditionalGeneration": Wrapper(
        by_type={"gemma": "GemmaForCausalLM", "*": "Gemma2ForCausalLM"}, text_type="gemma"
    ),
    # Sliding-window text models.
    "Exaone4_5_ForConditionalGeneration": Wrapper(backbone="Exaone4ForCausalLM", since="0.20.0"),
    "MiMoV2OmniForCausalLM": Wrapper(backbone="MiMoV2FlashForCausalLM", since="0.21.0"),
    # muse_glimmer.py: one class for both names, reading text_config when there is one.
    **_wrappers(
        ("MuseGlimmerForCausalLM", "MuseGlimmerForConditionalGeneration"),
        prefix="model.layers",
        backbone="MuseGlimmerForCausalLM",
        since="0.28.0",
    ),
    # MiniCPM-V/O pick their text model by the config's version; its keys are
    # at the top level.
    "MiniCPMV": Wrapper(prefix="llm.model.layers", text=None, select="minicpmv"),
    "MiniCPMO": Wrapper(prefix="llm.model.layers", text=None, select="minicpmo"),
}

_RECURRENT_WRAPPERS: dict[str, Wrapper] = {
    "Qwen3_5ForConditionalGeneration": Wrapper(backbone="Qwen3_5ForCausalLM", since="0.17.0"),
    "Qwen3_5MoeForConditionalGeneration": Wrapper(backbone="Qwen3_5MoeForCausalLM", since="0.17.0"),
}

WRAPPERS: dict[str, Wrapper] = {**_MULTIMODAL, **_RECURRENT_WRAPPERS}

# transformers' MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, for the text model types wrappers carry:
# the backbone vLLM builds when text_config names no architectures.
CAUSAL_LM: dict[str, str] = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "ministral3": "Ministral3ForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen2_moe": "Qwen2MoeForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "cohere2": "Cohere2ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "granite": "GraniteForCausalLM",
    "granitemoe": "GraniteMoeForCausalLM",
    "exaone4": "Exaone4ForCausalLM",
    "opt": "OPTForCausalLM",
}


def known(name: str) -> bool:
    """Whether kvplan derives the architecture ``name`` (directly or as a wrapper)."""
    return name in ARCHITECTURES or name in WRAPPERS
