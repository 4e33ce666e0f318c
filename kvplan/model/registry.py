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
    # The same vLLM class; per-layer block_configs need the checkpoint's own config code.
    "NemotronHPuzzleForCausalLM": Entry("mamba hybrid", "mamba:nemotron_h", {"puzzle": True}, since="0.16.0"),
    "GraniteMoeHybridForCausalLM": Entry("mamba hybrid", "mamba:granite_h"),
    "JambaForCausalLM": Entry("mamba hybrid", "mamba:jamba"),
    "FalconH1ForCausalLM": Entry("mamba hybrid", "mamba:falcon_h1"),
    # Their configs name no length: vLLM then takes 2048 tokens (config/model.py, default_max_len).
    "Mamba2ForCausalLM": Entry("attention-free (mamba2)", "mamba:mamba2_only", max_len=2048),
    "MambaForCausalLM": Entry("attention-free (mamba)", "mamba:mamba1_only", max_len=2048),
    "FalconMambaForCausalLM": Entry("attention-free (mamba)", "mamba:mamba1_only", max_len=2048),
    "Zamba2ForCausalLM": Entry("mamba hybrid", "recurrent:zamba2", max_len=4096),
    "OlmoHybridForCausalLM": Entry(
        "linear-attention hybrid", "recurrent:olmo_hybrid", since="0.18.0", max_len=65536
    ),
    "KimiLinearForCausalLM": Entry("linear-attention hybrid", "recurrent:kimi_linear", since="0.11.1"),
    "Lfm2ForCausalLM": Entry("short-conv hybrid", "recurrent:lfm2", since="0.10.2", max_len=128000),
    "Lfm2MoeForCausalLM": Entry(
        "short-conv hybrid", "recurrent:lfm2", {"moe": True}, since="0.11.1", max_len=128000
    ),
}

_KV_SHARING: dict[str, Entry] = {
    "Gemma3nForCausalLM": Entry("kv-sharing hybrid", "sharing:gemma3n", since="0.10.1", max_len=32768),
    "Gemma4ForCausalLM": Entry("kv-sharing hybrid", "sharing:gemma4", since="0.19.0", max_len=131072),
}

_ENCODER_DECODER: dict[str, Entry] = {
    "WhisperForConditionalGeneration": Entry("encoder-decoder", "encdec:whisper"),
}

ARCHITECTURES: dict[str, Entry] = {
    **_FULL_ATTENTION,
    **_SLIDING_WINDOW,
    **_CHUNKED_LOCAL,
    **_MLA,
    **_RECURRENT,
    **_KV_SHARING,
    **_ENCODER_DECODER,
}

_MULTIMODAL: dict[str, Wrapper] = {
    "Gemma3ForConditionalGeneration": Wrapper(backbone="Gemma3ForCausalLM"),
    "Llama4ForConditionalGeneration": Wrapper(backbone="Llama4ForCausalLM"),
}

_RECURRENT_WRAPPERS: dict[str, Wrapper] = {
    "Qwen3_5ForConditionalGeneration": Wrapper(backbone="Qwen3_5ForCausalLM", since="0.17.0"),
    "Qwen3_5MoeForConditionalGeneration": Wrapper(backbone="Qwen3_5MoeForCausalLM", since="0.17.0"),
    # minicpmv4_6.py / minicpmv4_7.py build Qwen3_5ForCausalLM under "language_model".
    "MiniCPMV4_6ForConditionalGeneration": Wrapper(backbone="Qwen3_5ForCausalLM", since="0.22.0"),
    "MiniCPMV4_7ForConditionalGeneration": Wrapper(backbone="Qwen3_5ForCausalLM", since="0.32.0"),
    # lfm2_vl.py: the text config's own architectures, under "language".
    "Lfm2VlForConditionalGeneration": Wrapper(prefix="language.model.layers", since="0.14.0"),
}

_KV_SHARING_WRAPPERS: dict[str, Wrapper] = {
    "Gemma3nForConditionalGeneration": Wrapper(backbone="Gemma3nForCausalLM"),
    "Gemma4ForConditionalGeneration": Wrapper(backbone="Gemma4ForCausalLM", since="0.19.0"),
    "Gemma4UnifiedForConditionalGeneration": Wrapper(backbone="Gemma4ForCausalLM", since="0.23.0"),
}

WRAPPERS: dict[str, Wrapper] = {**_MULTIMODAL, **_RECURRENT_WRAPPERS, **_KV_SHARING_WRAPPERS}

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
