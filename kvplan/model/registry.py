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
    config.json omits it.  ``keys``: config-key aliases (kvplan's name ->
    the config's); ``defaults``: the config class's values for omitted keys.
    """

    family: str
    derive: str
    options: dict[str, Any] = field(default_factory=dict)
    since: str | None = None
    until: str | None = None
    max_len: int | None = None
    keys: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wrapper:
    """An architecture that wraps a text backbone (vLLM's ``init_vllm_registered_model``).

    ``text``: the config key holding the backbone's keys (``text_config``,
    ``llm_config``, ...), None when they are at the top level.  ``backbone``:
    the text architecture vLLM hard-codes, None when it takes
    ``text_config.architectures`` or, failing that, transformers' causal-LM
    class for ``text_config.model_type`` (``CAUSAL_LM``).  ``prefix``: the
    module path of the backbone's decoder layers (what replaces the
    backbone's own ``model.layers``).
    """

    prefix: str = "language_model.model.layers"
    text: str | None = "text_config"
    backbone: str | None = None
    since: str | None = None
    until: str | None = None


def _entries(family: str, derive: str, names: tuple[str, ...], **kw: Any) -> dict[str, Entry]:
    return {name: Entry(family, derive, **kw) for name in names}


# One table per KV cache family (vLLM 0.33.0's registry names).

_DENSE = "dense"

# Config keys as transformers' attribute maps name them (kvplan's name -> the config's).
_GPT2_KEYS = {
    "num_hidden_layers": "n_layer",
    "num_attention_heads": "n_head",
    "hidden_size": "n_embd",
    "max_position_embeddings": "n_positions",
}


def _dense(
    *names: str, since: str | None = None, until: str | None = None, **options: Any
) -> dict[str, Entry]:
    """Names served by one model file: ``dense:dense`` with ``options``."""
    return {name: Entry(_DENSE, "dense:dense", options, since=since, until=until) for name in names}


def _backend(name: str, since: str | None = None, **options: Any) -> dict[str, Entry]:
    """A name vLLM serves through its Transformers backend (``backend:backend``)."""
    return {name: Entry("dense (Transformers backend)", "backend:backend", options, since=since)}


# vLLM's own dense model files: one attention per decoder layer.  Options
# (see families/dense.py): ``head`` rule, ``kv`` rule, ``window`` rule,
# ``prefix`` / ``attn`` (the layer's module path), ``kv_dtype``, ``replicate``.
_FULL_ATTENTION: dict[str, Entry] = {
    # Llama's decoder (llama.py, mistral.py and subclasses): head_dim else hidden/heads,
    # per-layer windows from layer_types
    **_dense(
        "LlamaForCausalLM",
        "LLaMAForCausalLM",
        "MistralForCausalLM",
        "Phi3ForCausalLM",
        "GraniteForCausalLM",
        "InternLM3ForCausalLM",
        "TeleFLMForCausalLM",
    ),
    **_dense("IQuestCoderForCausalLM", since="0.14.0"),
    **_dense("TeleChat3ForCausalLM", since="0.20.0"),
    "Ministral3ForCausalLM": Entry(_DENSE, "dense:dense", since="0.20.0", defaults={"head_dim": 128}),
    "Ernie4_5ForCausalLM": Entry(_DENSE, "dense:dense", since="0.10.1", defaults={"head_dim": 128}),
    # removed from vLLM's registry (_PREVIOUSLY_SUPPORTED_MODELS: last served 0.23.0 / 0.24.0)
    **_dense("InternLMForCausalLM", until="0.24.0"),
    **_dense("AquilaForCausalLM", "AquilaModel", until="0.25.0"),
    "TeleChat2ForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        keys={"num_hidden_layers": "n_layer", "num_attention_heads": "n_head"},
    ),
    # head_dim else hidden/heads, only the model-wide window
    **_dense(
        "MixtralForCausalLM",
        "CohereForCausalLM",
        "Ernie4_5_MoeForCausalLM",
        "Glm4MoeForCausalLM",
        "NemotronForCausalLM",
        "PhiMoEForCausalLM",
        "SolarForCausalLM",
        window="model",
    ),
    "Qwen3MoeForCausalLM": Entry(
        _DENSE, "dense:dense", {"window": "model"}, defaults={"use_sliding_window": False}
    ),
    "Glm4ForCausalLM": Entry(_DENSE, "dense:dense", {"window": "model"}, defaults={"head_dim": 128}),
    "MiniMaxM2ForCausalLM": Entry(
        _DENSE, "dense:dense", {"window": "model"}, since="0.11.1", defaults={"head_dim": 128}
    ),
    "HYV3ForCausalLM": Entry(
        _DENSE, "dense:dense", {"window": "model"}, since="0.20.0", defaults={"head_dim": 128}
    ),
    **_dense("HyperCLOVAXForCausalLM", since="0.18.0", window="model"),
    **_dense("K2HorizonForCausalLM", since="0.30.0", window="model"),
    **_dense("Param2MoEForCausalLM", since="0.20.0", window="model", replicate=False),
    "ExaoneForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        {"window": "model", "prefix": "model.h", "attn": "attn.attention.attn"},
        keys={"num_hidden_layers": "num_layers"},
    ),
    **_dense("BailingMoeForCausalLM", window="model", attn="attention.attn"),
    **_dense("BailingMoeV2ForCausalLM", since="0.11.0", window="model", attn="attention.attn"),
    **_dense("SarvamMoEForCausalLM", since="0.18.0", window="model", attn="attention.attn"),
    # head_dim read as given
    "GemmaForCausalLM": Entry(
        _DENSE, "dense:dense", {"head": "required", "window": "model"}, defaults={"head_dim": 256}
    ),
    # hidden_size / num_attention_heads whatever head_dim says
    **_dense("GraniteMoeForCausalLM", "GraniteMoeSharedForCausalLM", head="hidden"),
    **_dense("MiniCPMForCausalLM", "OlmoeForCausalLM", "OrionForCausalLM", head="hidden", window="model"),
    **_dense("InternLM2ForCausalLM", head="hidden", window="model", attn="attention.attn"),
    "StableLmForCausalLM": Entry(
        _DENSE, "dense:dense", {"head": "hidden", "window": "model"}, defaults={"num_key_value_heads": 32}
    ),
    "DbrxForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        {
            "head": "hidden",
            "window": "model",
            "prefix": "transformer.blocks",
            "attn": "norm_attn_norm.attn.attn",
        },
        keys={
            "num_hidden_layers": "n_layers",
            "num_attention_heads": "n_heads",
            "hidden_size": "d_model",
            "num_key_value_heads": "attn_config.kv_n_heads",
            "max_position_embeddings": "max_seq_len",
        },
        defaults={
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "hidden_size": 2048,
            "num_key_value_heads": 1,
        },
    ),
    "Step1ForCausalLM": Entry(
        _DENSE, "dense:dense", {"head": "hidden", "kv": "step1", "window": "model"}, since="0.15.1"
    ),
    # MHA: as many KV heads as attention heads
    "GPT2LMHeadModel": Entry(
        _DENSE,
        "dense:dense",
        {"head": "hidden", "kv": "heads", "window": "model", "prefix": "transformer.h", "attn": "attn.attn"},
        keys=_GPT2_KEYS,
        defaults={
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "hidden_size": 768,
            "max_position_embeddings": 1024,
        },
    ),
    "GPTJForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        {"head": "hidden", "kv": "heads", "window": "model", "prefix": "transformer.h", "attn": "attn.attn"},
        keys=_GPT2_KEYS,
        defaults={
            "num_hidden_layers": 28,
            "num_attention_heads": 16,
            "hidden_size": 4096,
            "max_position_embeddings": 2048,
        },
    ),
    "OPTForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        {"head": "hidden", "kv": "heads", "window": "model", "prefix": "model.decoder.layers"},
        defaults={
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "hidden_size": 768,
            "max_position_embeddings": 2048,
        },
    ),
    "BloomForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        {
            "head": "hidden",
            "kv": "heads",
            "window": "model",
            "prefix": "transformer.h",
            "attn": "self_attention.attn",
        },
        keys={"num_hidden_layers": "n_layer", "num_attention_heads": "n_head", "hidden_size": "n_embed"},
        defaults={"num_hidden_layers": 2, "num_attention_heads": 8, "hidden_size": 64},
    ),
    "MiniCPM3ForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        {"head": "qk", "kv": "heads", "window": "model"},
        defaults={"qk_nope_head_dim": 64, "qk_rope_head_dim": 32},
    ),
    # one KV head on every rank, head_dim as given
    "Step3TextForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        {"head": "required", "kv": "one", "window": "model"},
        since="0.10.1",
        defaults={"head_dim": 256},
    ),
    # Falcon builds its attention without the cache config: no window, the model's dtype
    "FalconForCausalLM": Entry(
        _DENSE,
        "dense:dense",
        {
            "head": "hidden",
            "kv": "falcon",
            "window": "none",
            "kv_dtype": "model",
            "prefix": "transformer.h",
            "attn": "self_attention.attn",
        },
        keys={"hidden_size": "n_embed"},
        defaults={
            "num_hidden_layers": 32,
            "num_attention_heads": 71,
            "hidden_size": 4544,
            "max_position_embeddings": 2048,
        },
    ),
    "ChatGLMModel": Entry(
        _DENSE,
        "dense:dense",
        {
            "head": "hidden",
            "kv": "chatglm",
            "window": "model",
            "prefix": "transformer.encoder.layers",
            "attn": "self_attention.attn",
        },
        keys={"num_hidden_layers": "num_layers", "max_position_embeddings": "seq_length"},
        defaults={
            "num_hidden_layers": 28,
            "num_attention_heads": 32,
            "hidden_size": 4096,
            "max_position_embeddings": 2048,
        },
    ),
    "DeciLMForCausalLM": Entry(_DENSE, "dense:decilm"),
    "DeepseekForCausalLM": Entry(_DENSE, "dense:deepseek"),
    # Qwen2Model (qwen2.py): no per-layer window, mixed layer types refused
    "Qwen2ForCausalLM": Entry(_DENSE, "dense:qwen2", defaults={"max_window_layers": 28}),
    "MiMoForCausalLM": Entry(_DENSE, "dense:qwen2"),
    "Qwen3ForCausalLM": Entry(
        _DENSE, "dense:qwen2", {"head": "head_dim"}, defaults={"max_window_layers": 28}
    ),
    "Qwen2MoeForCausalLM": Entry(_DENSE, "dense:qwen2_moe", defaults={"max_window_layers": 28}),
}
_FULL_ATTENTION["ChatGLMForConditionalGeneration"] = _FULL_ATTENTION["ChatGLMModel"]

# Served through vLLM's Transformers backend; ``moved``: the first release that does,
# ``native``: the dense options of the model file older releases built.
_TRANSFORMERS_BACKEND: dict[str, Entry] = {
    **_backend("SmolLM3ForCausalLM", since="0.10.1", pattern="smollm3"),
    **_backend("Kolibri1ForCausalLM", since="0.33.0", pattern="full_every:5:1"),
    **_backend("VaultGemmaForCausalLM", since="0.27.0", pattern="full_every:2:1"),
    **_backend("GPTBigCodeForCausalLM", moved="0.25.0", attn="attn", prefix="model.h", kv="falcon"),
    **_backend("Starcoder2ForCausalLM", moved="0.25.0"),
    **_backend("OlmoForCausalLM", moved="0.26.0"),
    **_backend("Olmo2ForCausalLM", moved="0.26.0"),
    **_backend("Olmo3ForCausalLM", since="0.11.0", moved="0.29.0", pattern="full_every:4:1"),
    **_backend("FlexOlmoForCausalLM", since="0.11.1", moved="0.29.0"),
    **_backend("HunYuanDenseV1ForCausalLM", moved="0.29.0"),
    **_backend("HunYuanMoEV1ForCausalLM", moved="0.29.0"),
    **_backend("ArceeForCausalLM", moved="0.32.0"),
    **_backend("CwmForCausalLM", since="0.11.0", moved="0.32.0", pattern="full_every:4:0"),
    **_backend("GlmForCausalLM", moved="0.32.0"),
    **_backend("GPTNeoXForCausalLM", moved="0.32.0", attn="attention"),
    **_backend("Jais2ForCausalLM", since="0.13.0", moved="0.32.0"),
    **_backend("MellumForCausalLM", since="0.23.0", moved="0.32.0", pattern="full"),
    **_backend("PhiForCausalLM", moved="0.32.0"),
    **_backend("SeedOssForCausalLM", since="0.10.2", moved="0.32.0"),
    **_backend("NanbeigeForCausalLM", since="0.30.0"),
}

_SLIDING_WINDOW: dict[str, Entry] = {
    "Gemma2ForCausalLM": Entry("sliding-window hybrid", "sliding:alternating", {"period": 2}),
    "Gemma3ForCausalLM": Entry("sliding-window hybrid", "sliding:alternating", {"period": 6}, max_len=131072),
    "Cohere2ForCausalLM": Entry("sliding-window hybrid", "sliding:cohere2"),
    "GptOssForCausalLM": Entry("sliding-window hybrid", "sliding:gpt_oss"),
}

_CHUNKED_LOCAL: dict[str, Entry] = {
    "Llama4ForCausalLM": Entry("chunked local", "chunked:llama4"),
}

_MLA: dict[str, Entry] = {
    **_entries(
        "mla",
        "mla:mla",
        ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM"),
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

ARCHITECTURES: dict[str, Entry] = {
    **_FULL_ATTENTION,
    **_TRANSFORMERS_BACKEND,
    **_SLIDING_WINDOW,
    **_CHUNKED_LOCAL,
    **_MLA,
    **_RECURRENT,
}

_MULTIMODAL: dict[str, Wrapper] = {
    "Gemma3ForConditionalGeneration": Wrapper(backbone="Gemma3ForCausalLM"),
    "Llama4ForConditionalGeneration": Wrapper(backbone="Llama4ForCausalLM"),
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
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
}


def known(name: str) -> bool:
    """Whether kvplan derives the architecture ``name`` (directly or as a wrapper)."""
    return name in ARCHITECTURES or name in WRAPPERS
