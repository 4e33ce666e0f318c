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
    "GptOssForCausalLM": Entry("sliding-window hybrid", "sliding:gpt_oss"),
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

ARCHITECTURES: dict[str, Entry] = {
    **_FULL_ATTENTION,
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
