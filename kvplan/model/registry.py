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

from dataclasses import field, replace
from typing import Any

from kvplan.records import record


@record(frozen=True)
class Entry:
    """A text architecture kvplan derives.

    ``options`` are keyword arguments for the deriver; ``since`` / ``until``
    are the first vLLM release that registers the name and the first that no
    longer does (None: always had it / still has it).  ``max_len`` is the
    ``max_position_embeddings`` transformers' config class supplies when a
    config.json omits it.  ``layers_key`` is the config key holding the
    decoder layer count vLLM splits over pipeline stages (``derived``: the
    deriver's layers tell, where the count depends on the release).
    ``keys``: config-key aliases (kvplan's name -> the config's);
    ``defaults``: the config class's values for omitted keys, applied when
    the config's ``model_type`` is ``model_type`` (or names none).
    ``registered``: the first release whose registry lists the name itself, where
    a wrapper built it as its text model before (``since`` then says from when).
    ``v1_since``: the first release whose V1 engine builds it, where older ones mark
    the model class V0-only (``SupportsV0Only``: V1 refuses it; kvplan plans V1).
    """

    family: str
    derive: str
    options: dict[str, Any] = field(default_factory=dict)
    since: str | None = None
    until: str | None = None
    max_len: int | None = None
    layers_key: str = "num_hidden_layers"
    keys: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    model_type: str | None = None
    registered: str | None = None
    v1_since: str | None = None


@record(frozen=True)
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
    A backbone whose own layers sit elsewhere than ``model.layers`` (OPT's
    ``model.decoder.layers``) keeps its own path under the wrapper's module.

    ``rewrite``: a function of ``kvplan.model.wrappers`` turning the text config
    into the one the wrapper hands its backbone (Cosmos3 Edge rewrites a dense
    config into Nemotron-H's).  ``before[r]``: the fields that differ on releases
    before ``r`` (the earliest bound that applies wins).
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
    rewrite: str | None = None
    before: dict[str, dict[str, Any]] | None = None
    since: str | None = None
    until: str | None = None


def _entries(family: str, derive: str, names: tuple[str, ...], **kw: Any) -> dict[str, Entry]:
    return {name: Entry(family, derive, **kw) for name in names}


# One table per KV cache family (vLLM 0.33.0's registry names).

_DENSE = "dense"
_BACKEND = "dense (Transformers backend)"

# Config keys as transformers' attribute maps name them (kvplan's name -> the config's).
_GPT2_KEYS = {
    "num_hidden_layers": "n_layer",
    "num_attention_heads": "n_head",
    "hidden_size": "n_embd",
    "max_position_embeddings": "n_positions",
}

# What transformers 5.20's config class (vLLM's own for chatglm and step3_text) sets
# for a key config.json omits, per model_type: the keys the derivers read, where the
# class gives a fixed value (not one computed from other keys, such as a head_dim of
# hidden_size / num_attention_heads or KV heads equal to the attention heads).
_L, _H, _D = "num_hidden_layers", "num_attention_heads", "hidden_size"
_KV, _HD, _SW, _MAX = "num_key_value_heads", "head_dim", "sliding_window", "max_position_embeddings"


def _geometry(
    layers: int, heads: int, hidden: int, max_len: int | None = None, **more: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {_L: layers, _H: heads, _D: hidden, **more}
    if max_len is not None:
        out[_MAX] = max_len
    return out


_QWEN_WINDOW = {_SW: 4096, "use_sliding_window": False}
CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": _geometry(32, 32, 4096, 2048),
    "mistral": _geometry(32, 32, 4096, 131072, **{_KV: 8, _SW: 4096}),
    "mixtral": _geometry(32, 32, 4096, 131072, **{_KV: 8}),
    "ministral3": _geometry(34, 32, 4096, 262144, **{_KV: 8, _HD: 128}),
    "phi3": _geometry(32, 32, 3072, 4096),
    "phimoe": _geometry(32, 32, 4096, 131072, **{_KV: 8}),
    "granite": _geometry(32, 32, 4096, 2048),
    "granitemoe": _geometry(32, 32, 4096, 2048),
    "granitemoeshared": _geometry(32, 32, 4096, 2048),
    "qwen2": _geometry(32, 32, 4096, 32768, **{_KV: 32, "max_window_layers": 28, **_QWEN_WINDOW}),
    "qwen3": _geometry(32, 32, 4096, 32768, **{_KV: 32, _HD: 128, "max_window_layers": 28, **_QWEN_WINDOW}),
    "qwen2_moe": _geometry(24, 16, 2048, 32768, **{_KV: 16, "max_window_layers": 28, **_QWEN_WINDOW}),
    "qwen3_moe": _geometry(24, 32, 2048, 32768, **{_KV: 4, **_QWEN_WINDOW}),
    "cohere": _geometry(40, 64, 8192, 8192),
    "ernie4_5": _geometry(18, 16, 1024, 131072, **{_KV: 2, _HD: 128}),
    "ernie4_5_moe": _geometry(28, 20, 2560, 131072, **{_KV: 4}),
    "glm4": _geometry(40, 32, 4096, 131072, **{_KV: 2, _HD: 128}),
    "glm4_moe": _geometry(46, 96, 4096, 131072, **{_KV: 8}),
    "gemma": _geometry(28, 16, 3072, 8192, **{_KV: 16, _HD: 256}),
    "hy_v3": _geometry(80, 64, 4096, 131072, **{_KV: 8, _HD: 128}),
    "hyperclovax": _geometry(32, 32, 4096, 2048),
    "minicpm3": _geometry(62, 40, 2560, 32768, **{_KV: 40, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32}),
    "minimax_m2": _geometry(62, 48, 3072, 196608, **{_KV: 8, _HD: 128}),
    "nemotron": _geometry(32, 48, 6144, 4096),
    "olmoe": _geometry(16, 16, 2048, 4096),
    "stablelm": _geometry(32, 32, 2560, 4096, **{_KV: 32}),
    "dbrx": _geometry(24, 16, 2048, 2048, **{_KV: 1}),
    "gpt2": _geometry(12, 12, 768, 1024),
    "gptj": _geometry(28, 16, 4096, 2048),
    "opt": _geometry(12, 12, 768, 2048),
    "bloom": _geometry(2, 8, 64),
    "falcon": _geometry(32, 71, 4544, 2048),
    "chatglm": _geometry(28, 32, 4096, None, seq_length=2048, multi_query_group_num=1),
    "step3_text": _geometry(61, 64, 7168, None, max_seq_len=65536, **{_HD: 256}),
    # the Transformers backend's
    "smollm3": _geometry(36, 16, 2048, 32768, **{_KV: 4, "use_sliding_window": False}),
    "seed_oss": _geometry(64, 80, 4096, 524288, **{_KV: 8, _HD: 128}),
    "starcoder2": _geometry(30, 24, 3072, 4096, **{_KV: 2}),
    "gpt_neox": _geometry(44, 64, 6144, 2048),
    "phi": _geometry(24, 32, 2048, 2048),
    "hunyuan_v1_dense": _geometry(32, 32, 4096, 2048),
    "hunyuan_v1_moe": _geometry(32, 32, 4096, 2048),
    "arcee": _geometry(32, 32, 2560, 4096),
    "cwm": _geometry(64, 48, 6144, 131072, **{_KV: 8, _HD: 128, _SW: 8192}),
    "flex_olmo": _geometry(32, 32, 4096, 4096),
    "gpt_bigcode": _geometry(12, 12, 768, 1024),
    "glm": _geometry(40, 32, 4096, 131072, **{_KV: 2, _HD: 128}),
    "jais2": _geometry(32, 26, 3328, 8192),
    "kolibri1": _geometry(50, 48, 2560, 262144, **{_KV: 4, _HD: 128, _SW: 513}),
    "mellum": _geometry(28, 32, 2304, 131072, **{_KV: 4, _HD: 128, _SW: 1024}),
    "vaultgemma": _geometry(26, 8, 2304, 8192, **{_KV: 4, _HD: 256, _SW: 4096}),
    "olmo": _geometry(32, 32, 4096, 2048),
    "olmo2": _geometry(32, 32, 4096, 2048),
    "olmo3": _geometry(32, 32, 4096, 2048, **{_SW: 4096}),
}


def _dense(
    derive: str = "dense:dense",
    *,
    cls: str | None = None,
    since: str | None = None,
    until: str | None = None,
    keys: dict[str, str] | None = None,
    v1_since: str | None = None,
    **options: Any,
) -> Entry:
    """A name served by one of vLLM's dense model files (``families/dense.py``); ``cls``:
    the model_type whose config class fills in omitted keys."""
    return Entry(
        _DENSE,
        derive,
        options,
        since=since,
        until=until,
        keys=keys or {},
        defaults=CLASS_DEFAULTS[cls] if cls else {},
        model_type=cls,
        v1_since=v1_since,
    )


def _backend(
    cls: str, *, since: str | None = None, keys: dict[str, str] | None = None, **options: Any
) -> Entry:
    """A name vLLM serves through its Transformers backend (``families/backend.py``)."""
    return Entry(
        _BACKEND,
        "backend:backend",
        options,
        since=since,
        keys=keys or {},
        defaults=CLASS_DEFAULTS[cls],
        model_type=cls,
    )


_MHA: dict[str, Any] = {"head": "hidden", "kv": "heads", "window": "model"}

# vLLM's own dense model files: one attention per decoder layer.  Options (see
# families/dense.py): ``head`` / ``kv`` / ``window`` rules, ``prefix`` / ``attn``
# (the layer's module path), ``kv_dtype``, ``replicate``.
_FULL_ATTENTION: dict[str, Entry] = {
    # Llama's decoder (llama.py, mistral.py and the files built on them): head_dim
    # else hidden/heads, per-layer windows from layer_types
    "LlamaForCausalLM": _dense(cls="llama"),
    "LLaMAForCausalLM": _dense(cls="llama"),
    "MistralForCausalLM": _dense(cls="mistral"),
    "Ministral3ForCausalLM": _dense(cls="ministral3", since="0.20.0"),
    "Phi3ForCausalLM": _dense(cls="phi3"),
    "GraniteForCausalLM": _dense(cls="granite"),
    "InternLM3ForCausalLM": _dense(),
    "TeleFLMForCausalLM": _dense(),
    "IQuestCoderForCausalLM": _dense(since="0.14.0"),
    "TeleChat3ForCausalLM": _dense(since="0.20.0"),
    "Ernie4_5ForCausalLM": _dense(cls="ernie4_5", since="0.10.1"),
    "TeleChat2ForCausalLM": _dense(keys={"num_hidden_layers": "n_layer", "num_attention_heads": "n_head"}),
    # removed from vLLM's registry (_PREVIOUSLY_SUPPORTED_MODELS: last served 0.23.0 / 0.24.0)
    "InternLMForCausalLM": _dense(until="0.24.0"),
    "AquilaForCausalLM": _dense(until="0.25.0"),
    "AquilaModel": _dense(until="0.25.0"),
    # head_dim else hidden/heads, only the model-wide window
    "MixtralForCausalLM": _dense(cls="mixtral", window="model"),
    "PhiMoEForCausalLM": _dense(cls="phimoe", window="model"),
    "CohereForCausalLM": _dense(cls="cohere", window="model"),
    "Ernie4_5_MoeForCausalLM": _dense(cls="ernie4_5_moe", window="model"),
    "Glm4ForCausalLM": _dense(cls="glm4", window="model"),
    "NemotronForCausalLM": _dense(cls="nemotron", window="model"),
    # 0.10.0 reads the config with vLLM's own SolarConfig (vllm/transformers_utils/configs/
    # solar.py), whose sliding_window defaults to 2047; 0.10.1 dropped that class
    "SolarForCausalLM": _dense(window="model", before={"0.10.1": {"defaults": {"sliding_window": 2047}}}),
    "Qwen3MoeForCausalLM": _dense(cls="qwen3_moe", window="model"),
    "MiniMaxM2ForCausalLM": _dense(cls="minimax_m2", since="0.11.1", window="model"),
    "HYV3ForCausalLM": _dense(cls="hy_v3", since="0.20.0", window="model"),
    "HyperCLOVAXForCausalLM": _dense(cls="hyperclovax", since="0.18.0", window="model"),
    "K2HorizonForCausalLM": _dense(since="0.30.0", window="model"),
    "Param2MoEForCausalLM": _dense(since="0.20.0", window="model", replicate=False),
    "ExaoneForCausalLM": _dense(
        window="model", prefix="model.h", attn="attn.attention.attn", keys={"num_hidden_layers": "num_layers"}
    ),
    # bailing_moe.py asserted KV heads % TP == 0 up to 0.11.0
    "BailingMoeForCausalLM": _dense(
        window="model", attn="attention.attn", before={"0.11.1": {"replicate": False}}
    ),
    "BailingMoeV2ForCausalLM": _dense(
        since="0.11.0", window="model", attn="attention.attn", before={"0.11.1": {"replicate": False}}
    ),
    "SarvamMoEForCausalLM": _dense(since="0.18.0", window="model", attn="attention.attn"),
    # the head_dim key must be there (null: hidden/heads)
    "Glm4MoeForCausalLM": _dense(cls="glm4_moe", head="head_dim_key", window="model"),
    # head_dim read as it is
    "GemmaForCausalLM": _dense(cls="gemma", head="required", window="model"),
    # hidden_size / num_attention_heads whatever head_dim says
    "GraniteMoeForCausalLM": _dense(cls="granitemoe", head="hidden"),
    "GraniteMoeSharedForCausalLM": _dense(cls="granitemoeshared", head="hidden"),
    "MiniCPMForCausalLM": _dense(head="hidden", window="model"),
    "OlmoeForCausalLM": _dense(cls="olmoe", head="hidden", window="model"),
    "OrionForCausalLM": _dense(head="hidden", window="model"),
    "StableLmForCausalLM": _dense(cls="stablelm", head="hidden", window="model"),
    "InternLM2ForCausalLM": _dense(head="hidden", window="model", attn="attention.attn"),
    "DbrxForCausalLM": _dense(
        cls="dbrx",
        head="hidden",
        window="model",
        prefix="transformer.blocks",
        attn="norm_attn_norm.attn.attn",
        keys={
            "num_hidden_layers": "n_layers",
            "num_attention_heads": "n_heads",
            "hidden_size": "d_model",
            "num_key_value_heads": "attn_config.kv_n_heads",
            "max_position_embeddings": "max_seq_len",
        },
    ),
    "Step1ForCausalLM": _dense(since="0.15.0", head="hidden", kv="step1", window="model"),
    # as many KV heads as attention heads
    "GPT2LMHeadModel": _dense(cls="gpt2", **_MHA, prefix="transformer.h", attn="attn.attn", keys=_GPT2_KEYS),
    "GPTJForCausalLM": _dense(cls="gptj", **_MHA, prefix="transformer.h", attn="attn.attn", keys=_GPT2_KEYS),
    "OPTForCausalLM": _dense(cls="opt", **_MHA, prefix="model.decoder.layers"),
    # V0-only before 0.10.2 (bloom.py: SupportsV0Only)
    "BloomForCausalLM": _dense(
        cls="bloom",
        v1_since="0.10.2",
        **_MHA,
        prefix="transformer.h",
        attn="self_attention.attn",
        keys={"num_hidden_layers": "n_layer", "num_attention_heads": "n_head", "hidden_size": "n_embed"},
    ),
    # an MHA cache of MLA-shaped heads: qk_nope_head_dim + qk_rope_head_dim
    "MiniCPM3ForCausalLM": _dense(cls="minicpm3", head="qk", kv="heads", window="model"),
    # one KV head on every rank, head_dim as given
    # its model has an empty prefix, so vLLM names the layers ".layers.{i}.self_attn.attn"
    "Step3TextForCausalLM": _dense(
        cls="step3_text", since="0.10.1", head="required", kv="one", window="model", prefix=".layers"
    ),
    # Falcon builds its attention without the cache config: no window, the model's dtype
    "FalconForCausalLM": _dense(
        cls="falcon",
        head="hidden",
        kv="falcon",
        window="none",
        kv_dtype="model",
        prefix="transformer.h",
        attn="self_attention.attn",
        keys={"hidden_size": "n_embed"},
    ),
    # ChatGLM's two names are one vLLM model class
    **dict.fromkeys(
        ("ChatGLMModel", "ChatGLMForConditionalGeneration"),
        _dense(
            cls="chatglm",
            head="hidden",
            kv="chatglm",
            window="model",
            prefix="transformer.encoder.layers",
            attn="self_attention.attn",
            keys={"num_hidden_layers": "num_layers"},
        ),
    ),
    # Llama attention on the blocks whose attention is not a no-op
    "DeciLMForCausalLM": _dense("dense:decilm"),
    # deepseek_v2.py's DeepseekAttention (plain GQA) unless the config asks for latent attention
    "DeepseekForCausalLM": _dense("dense:deepseek"),
    # GQA with interleaved_sliding_window; its latent and sink attention are refused
    "PanguEmbeddedForCausalLM": _dense("dense:openpangu", since="0.11.1"),
    # Qwen2Model (qwen2.py): no per-layer window, mixed layer types refused
    "Qwen2ForCausalLM": _dense("dense:qwen2", cls="qwen2"),
    "Qwen3ForCausalLM": _dense("dense:qwen2", cls="qwen3", head="head_dim"),
    "MiMoForCausalLM": _dense("dense:qwen2"),
    "Qwen2MoeForCausalLM": _dense("dense:qwen2_moe", cls="qwen2_moe"),
}

# Served through vLLM's Transformers backend; ``moved``: the first release that does;
# ``native``: the dense options of the model file vLLM built before that (none: not
# derived for those releases; HunYuan's cross-layer KV sharing, use_cla, is refused);
# ``native_before[r]``: options that differ on releases before ``r``.
_TRANSFORMERS_BACKEND: dict[str, Entry] = {
    "SmolLM3ForCausalLM": _backend("smollm3", since="0.10.1", pattern="smollm3"),
    "Kolibri1ForCausalLM": _backend("kolibri1", since="0.33.0", pattern="full_every:5:1"),
    "VaultGemmaForCausalLM": _backend("vaultgemma", since="0.27.0", pattern="full_every:2:1"),
    "GPTBigCodeForCausalLM": _backend(
        "gpt_bigcode",
        moved="0.25.0",
        native={**_MHA, "kv": "falcon", "prefix": "transformer.h", "attn": "attn.attn"},
        # gpt_bigcode.py built its model under an empty prefix in 0.10.0 (".h.{i}.attn.attn")
        native_before={"0.10.1": {"prefix": ".h"}},
        prefix="model.h",
        attn="attn",
        kv="falcon",
        keys=_GPT2_KEYS,
    ),
    "Starcoder2ForCausalLM": _backend(
        "starcoder2", moved="0.25.0", native={"head": "hidden", "window": "model"}
    ),
    "OlmoForCausalLM": _backend("olmo", moved="0.26.0", native=_MHA),
    # olmo2.py named the attention after its module (no ".attn") up to 0.10
    "Olmo2ForCausalLM": _backend(
        "olmo2", moved="0.26.0", native={"head": "hidden"}, native_before={"0.11.0": {"attn": "self_attn"}}
    ),
    "Olmo3ForCausalLM": _backend(
        "olmo3", since="0.11.0", moved="0.29.0", native={"head": "hidden"}, pattern="full_every:4:1"
    ),
    "FlexOlmoForCausalLM": _backend(
        "flex_olmo", since="0.11.1", moved="0.29.0", native={"head": "hidden", "window": "model"}
    ),
    "HunYuanDenseV1ForCausalLM": _backend(
        "hunyuan_v1_dense",
        moved="0.29.0",
        native={"head": "hunyuan", "window": "model", "unsupported": ("use_cla",)},
    ),
    "HunYuanMoEV1ForCausalLM": _backend(
        "hunyuan_v1_moe",
        moved="0.29.0",
        native={"head": "hunyuan", "window": "model", "unsupported": ("use_cla",)},
    ),
    # arcee.py named its model ".model" (an empty prefix) up to 0.21
    "ArceeForCausalLM": _backend(
        "arcee", moved="0.32.0", native={}, native_before={"0.22.0": {"prefix": ".model.layers"}}
    ),
    "CwmForCausalLM": _backend("cwm", since="0.11.0", moved="0.32.0", native={}, pattern="full_every:4:0"),
    "GlmForCausalLM": _backend("glm", moved="0.32.0", native={}),
    "GPTNeoXForCausalLM": _backend(
        "gpt_neox",
        moved="0.32.0",
        native={**_MHA, "prefix": "gpt_neox.layers", "attn": "attention.attn"},
        attn="attention",
    ),
    "Jais2ForCausalLM": _backend("jais2", since="0.13.0", moved="0.32.0", native={"window": "interleaved"}),
    # before 0.32 vLLM read Mellum configs with its own Qwen3MoeConfig subclass, which
    # drops sliding_window unless use_sliding_window
    "MellumForCausalLM": _backend(
        "mellum", since="0.22.1", moved="0.32.0", native={"window_if": "use_sliding_window"}, pattern="full"
    ),
    "PhiForCausalLM": _backend("phi", moved="0.32.0", native=_MHA),
    "SeedOssForCausalLM": _backend(
        "seed_oss", since="0.10.2", moved="0.32.0", native={"head": "required", "window": "model"}
    ),
}

_SLIDING_WINDOW: dict[str, Entry] = {
    "Gemma2ForCausalLM": Entry("sliding-window hybrid", "sliding:alternating", {"period": 2}),
    "Gemma3ForCausalLM": Entry("sliding-window hybrid", "sliding:alternating", {"period": 6}, max_len=131072),
    "Cohere2ForCausalLM": Entry("sliding-window hybrid", "sliding:cohere2"),
    # gpt_oss.py named its decoder layers model.block.{i} in 0.10.1
    "GptOssForCausalLM": Entry(
        "sliding-window hybrid", "sliding:gpt_oss", {"before": {"0.10.2": "model.block"}}, since="0.10.1"
    ),
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
    # built by mllama4.py from 0.10.0, registered from 0.10.1
    "Llama4ForCausalLM": Entry("chunked local", "chunked:llama4", registered="0.10.1"),
}

_MLA: dict[str, Entry] = {
    **_entries("mla", "mla:deepseek", ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM")),
    "MistralLarge3ForCausalLM": Entry("mla", "mla:deepseek", since="0.12.0"),
    "Glm4MoeLiteForCausalLM": Entry("mla", "mla:deepseek", since="0.15.0"),
    "AXK1ForCausalLM": Entry("mla", "mla:deepseek", since="0.17.0"),
    "PanguUltraMoEForCausalLM": Entry("mla", "mla:always_mla", since="0.11.1"),
    "SarvamMLAForCausalLM": Entry("mla", "mla:always_mla", since="0.18.0"),
    "LongcatFlashForCausalLM": Entry("mla", "mla:longcat", since="0.11.0", layers_key="derived"),
    "LongcatFlashNgramForCausalLM": Entry("mla", "mla:longcat", since="0.26.0", layers_key="derived"),
}

# DeepSeek Sparse Attention: MLA plus the lightning indexer's key cache.
_MLA_SPARSE: dict[str, Entry] = {
    "DeepseekV32ForCausalLM": Entry("mla + sparse indexer (DSA)", "mla:deepseek", since="0.11.0"),
    "GlmMoeDsaForCausalLM": Entry("mla + sparse indexer (DSA)", "mla:deepseek", since="0.16.0"),
}

_RECURRENT: dict[str, Entry] = {
    "Qwen3NextForCausalLM": Entry("linear-attention hybrid", "mamba:qwen3_next", since="0.10.2"),
    # qwen3_5.py's text models, built by the Qwen3.5 wrappers from 0.17 and registered from 0.27
    **_entries(
        "linear-attention hybrid",
        "mamba:qwen3_next",
        ("Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM"),
        since="0.17.0",
        registered="0.27.0",
    ),
    "NemotronHForCausalLM": Entry("mamba hybrid", "mamba:nemotron_h"),
    # The same vLLM class; per-layer block_configs need the checkpoint's own config code.
    "NemotronHPuzzleForCausalLM": Entry("mamba hybrid", "mamba:nemotron_h", {"puzzle": True}, since="0.16.0"),
    "GraniteMoeHybridForCausalLM": Entry("mamba hybrid", "mamba:granite_h"),
    # JambaForCausalLM and MambaForCausalLM (FalconMamba's class too) are V0-only in 0.10.0
    # (jamba.py, mamba.py: SupportsV0Only)
    "JambaForCausalLM": Entry("mamba hybrid", "mamba:jamba", v1_since="0.10.1"),
    "FalconH1ForCausalLM": Entry("mamba hybrid", "mamba:falcon_h1"),
    # Their configs name no length: vLLM then takes 2048 tokens (config/model.py, default_max_len).
    "Mamba2ForCausalLM": Entry("attention-free (mamba2)", "mamba:mamba2_only", max_len=2048),
    "MambaForCausalLM": Entry("attention-free (mamba)", "mamba:mamba1_only", max_len=2048, v1_since="0.10.1"),
    "FalconMambaForCausalLM": Entry(
        "attention-free (mamba)", "mamba:mamba1_only", max_len=2048, v1_since="0.10.1"
    ),
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
    # Gemma 3n's wrapper builds it from 0.10.0; vLLM registers it alone from 0.10.1 (and
    # refuses it alone before 0.11.1: Behaviour.gemma3n_text_targets_wrapper)
    "Gemma3nForCausalLM": Entry("kv-sharing hybrid", "sharing:gemma3n", max_len=32768, registered="0.10.1"),
    "Gemma4ForCausalLM": Entry("kv-sharing hybrid", "sharing:gemma4", since="0.19.0", max_len=131072),
}

_ENCODER_DECODER: dict[str, Entry] = {
    # V0-only before 0.10.2 (whisper.py: SupportsV0Only)
    "WhisperForConditionalGeneration": Entry("encoder-decoder", "encdec:whisper", v1_since="0.10.2"),
}

# Multimodal architectures that build their own text model (not a registered one).
_MULTIMODAL_TEXT: dict[str, Entry] = {
    # molmo.py MolmoAttention: head size hidden / heads (head_dim ignored).
    "MolmoForCausalLM": Entry("dense", "dense:dense", {"head_key": False}),
}

# Multimodal architectures whose text model reads the top level of their config.
_MULTIMODAL_OWN_TEXT: dict[str, Entry] = {
    # glm4v.py: ChatGLM's GLMTransformer under "transformer" (ChatGLMBaseModel), its
    # layers and config keys; the vision tower keeps no KV cache.
    "GLM4VForCausalLM": _dense(
        cls="chatglm",
        head="hidden",
        kv="chatglm",
        window="model",
        prefix="transformer.encoder.layers",
        attn="self_attention.attn",
        keys={"num_hidden_layers": "num_layers"},
    ),
    # ernie45_vl.py builds ernie45_vl_moe.py's Ernie4_5_VLMoeForCausalLM on the whole
    # config: head_dim else hidden / heads, num_key_value_heads, no window of its own.
    "Ernie4_5_VLMoeForConditionalGeneration": _dense(
        since="0.10.2", window="model", prefix="language_model.model.layers"
    ),
}

# Architectures first registered from vLLM 0.12 on, each on a family module of its own
# kind: several caches a layer (families/looped.py), per-layer windows and head sizes
# (families/per_layer.py).
# What the config classes fill in for keys a config.json omits (the keys the derivers
# read): vLLM's DoryConfig (transformers_utils/configs/dory.py), transformers 5.20's
# HrmTextConfig (models/hrm_text/configuration_hrm_text.py).
_DORY_DEFAULTS: dict[str, Any] = {
    **_geometry(72, 16, 2560, 8192, **{_KV: 4, _HD: 256, _SW: 1024}),
    "n_input_layers": 0,
    "n_output_layers": 0,
    "n_recurrent_loops": 1,
    "recurrent_kv_cache_mode": "per_loop",
}
_HRM_TEXT_DEFAULTS: dict[str, Any] = {
    **_geometry(16, 12, 1536, 2048, **{_HD: 128}),
    "H_cycles": 2,
    "L_cycles": 3,
}

_NEWER: dict[str, Entry] = {
    "IQuestLoopCoderForCausalLM": Entry(
        "several caches per layer", "looped:iquest_loopcoder", since="0.14.0"
    ),
    "DoryForCausalLM": Entry(
        "several caches per layer",
        "looped:dory",
        since="0.33.0",
        defaults=_DORY_DEFAULTS,
        model_type="dory",
        layers_key="derived",
    ),
    "HrmTextForCausalLM": Entry(
        "several caches per layer",
        "looped:hrm_text",
        since="0.24.0",
        defaults=_HRM_TEXT_DEFAULTS,
        model_type="hrm_text",
        layers_key="derived",
    ),
    "Plamo3ForCausalLM": Entry("sliding-window hybrid", "per_layer:plamo3", since="0.12.0"),
    "Rnj1ForCausalLM": Entry("sliding-window hybrid", "per_layer:rnj1", since="0.20.0"),
    "DomynEdgeForCausalLM": Entry("sliding-window hybrid", "per_layer:domyn_edge", since="0.33.0"),
    "Step3p5ForCausalLM": Entry("sliding-window hybrid", "per_layer:step3p5", since="0.15.1"),
    "AliceAIForCausalLM": Entry("linear-attention hybrid", "hybrid_kda:alice_ai", since="0.33.0"),
    "BailingMoeV3ForCausalLM": Entry("linear-attention hybrid", "hybrid_kda:bailing_moe_v3", since="0.28.0"),
    "BailingMoeV2_5ForCausalLM": Entry(
        "linear-attention hybrid", "lightning:bailing_moe_v2_5", since="0.17.0"
    ),
    # openpangu.py's decoder (PanguEmbedded's), with MoE MLPs: GQA, or sink attention
    "PanguProMoEV2ForCausalLM": _dense("dense:openpangu", since="0.14.0"),
}

ARCHITECTURES: dict[str, Entry] = {
    **_FULL_ATTENTION,
    **_TRANSFORMERS_BACKEND,
    **_SLIDING_WINDOW,
    **_CHUNKED_LOCAL,
    **_MLA,
    **_MLA_SPARSE,
    **_RECURRENT,
    **_KV_SHARING,
    **_ENCODER_DECODER,
    **_MULTIMODAL_TEXT,
    **_MULTIMODAL_OWN_TEXT,
    **_NEWER,
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
    # qwen3_vl.py built the text model's layers directly under language_model in 0.11.0
    "Qwen3VLForConditionalGeneration": Wrapper(
        backbone="Qwen3ForCausalLM",
        text_type="qwen3_vl_text",
        since="0.11.0",
        before={"0.11.1": {"prefix": "language_model.layers"}},
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
    # cohere2_vision.py built Cohere2ForCausalLM whatever the text config named in 0.10.1
    "Cohere2VisionForConditionalGeneration": Wrapper(
        text_type="cohere2", since="0.10.1", before={"0.10.2": {"backbone": "Cohere2ForCausalLM"}}
    ),
    "Eagle2_5_VLForConditionalGeneration": Wrapper(since="0.15.0"),
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
    # minicpmv4_6.py / minicpmv4_7.py build Qwen3_5ForCausalLM under "language_model".
    "MiniCPMV4_6ForConditionalGeneration": Wrapper(backbone="Qwen3_5ForCausalLM", since="0.22.0"),
    "MiniCPMV4_7ForConditionalGeneration": Wrapper(backbone="Qwen3_5ForCausalLM", since="0.32.0"),
    # lfm2_vl.py: the text config's own architectures, under "language".
    "Lfm2VlForConditionalGeneration": Wrapper(prefix="language.model.layers", since="0.14.0"),
}

_KV_SHARING_WRAPPERS: dict[str, Wrapper] = {
    # 0.10.0 served the name with gemma3n.py's own text-only class, its layers under
    # model.language_model (gemma3n_mm.py's wrapper came in 0.10.1)
    "Gemma3nForConditionalGeneration": Wrapper(
        backbone="Gemma3nForCausalLM", before={"0.10.1": {"prefix": "model.language_model.layers"}}
    ),
    "Gemma4ForConditionalGeneration": Wrapper(backbone="Gemma4ForCausalLM", since="0.19.0"),
    "Gemma4UnifiedForConditionalGeneration": Wrapper(backbone="Gemma4ForCausalLM", since="0.23.0"),
}

_MLA_WRAPPERS: dict[str, Wrapper] = {
    # kimi_vl.py built DeepseekV2Model itself under language_model before 0.15.0
    "KimiVLForConditionalGeneration": Wrapper(
        backbone="DeepseekV2ForCausalLM", before={"0.15.0": {"prefix": "language_model.layers"}}
    ),
    # kimi_k25.py built DeepseekV2Model itself under language_model before 0.16.0
    "KimiK25ForConditionalGeneration": Wrapper(
        backbone="DeepseekV2ForCausalLM",
        since="0.15.0",
        before={"0.16.0": {"prefix": "language_model.layers"}},
    ),
    "DeepseekVLV2ForCausalLM": Wrapper(prefix="language.model.layers", text="language_config"),
}

# Glm4v's text model by the top level's model_type (glm4_1v.py,
# Glm4vForConditionalGeneration.__init__: glm_ocr joined the list in 0.16, glmga in
# 0.23), else the text section's architectures.  0.10.0 built Glm4ForCausalLM on the
# whole config, without a module of its own.
_GLM4V_DENSE = {"glm4v": "Glm4ForCausalLM"}
_GLM4V_MOE = {"glm4v_moe": "Glm4MoeForCausalLM"}
_GLM4V = Wrapper(
    by_type={**_GLM4V_DENSE, "glm_ocr": "Glm4ForCausalLM", "glmga": "Glm4ForCausalLM", **_GLM4V_MOE},
    type_of="top",
    before={
        "0.10.1": {"prefix": "model.layers", "text": None, "backbone": "Glm4ForCausalLM"},
        "0.16.0": {"by_type": {**_GLM4V_DENSE, **_GLM4V_MOE}},
        "0.23.0": {"by_type": {**_GLM4V_DENSE, "glm_ocr": "Glm4ForCausalLM", **_GLM4V_MOE}},
    },
)

# What vLLM's own NemotronHConfig (transformers_utils/configs/nemotron_h.py) gives the
# keys a Cosmos3 Edge text config omits, up to 0.29: its Cosmos3EdgeTextConfig extended it.
_COSMOS3_EDGE_NEMOTRON_H = {
    "num_hidden_layers": 28,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 4096,
}

# Wrappers of text models kvplan derives, as vLLM 0.33.0's model files build them
# (vllm/model_executor/models/<module>.py, vllm/models/<name>/).
_MULTIMODAL_WRAPPERS: dict[str, Wrapper] = {
    "Glm4vForConditionalGeneration": _GLM4V,
    "Glm4vMoeForConditionalGeneration": replace(_GLM4V, since="0.10.1"),
    # glm_ocr.py: Glm4vForConditionalGeneration with its own vision tower.
    "GlmOcrForConditionalGeneration": replace(_GLM4V, since="0.16.0"),
    # blip2.py: the text section's architectures (OPT in the published checkpoints);
    # Blip2Config's text section defaults to OPT.
    "Blip2ForConditionalGeneration": Wrapper(text_type="opt"),
    # step3_vl.py / step_vl.py: the text section's own architectures.
    "Step3VLForConditionalGeneration": Wrapper(text_type="step3_text", since="0.10.1"),
    "StepVLForConditionalGeneration": Wrapper(since="0.15.0"),
    # paddleocr_vl.py: Ernie4_5ForCausalLM on the top level with the text section's
    # keys merged over it.
    "PaddleOCRVLForConditionalGeneration": Wrapper(
        backbone="Ernie4_5ForCausalLM", text_type="paddleocr_vl_text", since="0.11.1"
    ),
    # deepseek_ocr.py / deepseek_ocr2.py: the DeepSeek-V2 decoder of
    # language_config (DeepseekVLV2Config), plain attention when its qk head dims are 0.
    **{
        name: Wrapper(text="language_config", text_type="deepseek_v2", since=since)
        for name, since in (
            ("DeepseekOCRForCausalLM", "0.11.1"),
            ("DeepseekOCR2ForCausalLM", "0.16.0"),
        )
    },
    # nano_nemotron_vl.py: the text section's architectures (Nemotron-H), one class for
    # the four names; only NemotronH_Nano_VL_V2 has vLLM's SSM cache dtype fix-up.
    "NemotronH_Nano_VL_V2": Wrapper(text_type="nemotron_h", since="0.11.0"),
    **{
        name: Wrapper(text_type="nemotron_h", rewrite="nemotron_omni", since=since)
        for name, since in (
            ("NemotronH_Nano_Omni_Reasoning_V3", "0.20.0"),
            ("NemotronH_Super_Omni_Reasoning_V3", "0.20.0"),
            ("NemotronH_Omni_Reasoning_V3", "0.29.0"),
        )
    },
    # cosmos3_edge.py: the dense text model as Nemotron-H attention and MLP layers.
    "Cosmos3EdgeForConditionalGeneration": Wrapper(
        backbone="Cosmos3EdgeForCausalLM",
        text_type="cosmos3_edge_text",
        rewrite="cosmos3_edge",
        since="0.26.0",
        before={"0.30.0": {"text_defaults": _COSMOS3_EDGE_NEMOTRON_H}},
    ),
    # molmo2.py: Molmo2TextModel under "model", from text_config (else llm_config), in
    # the checkpoint's own config layout (vit_config, adapter_config).
    "Molmo2ForConditionalGeneration": Wrapper(
        prefix="model.layers", text="text_config|llm_config", backbone="Molmo2TextModel", since="0.15.0"
    ),
    # moondream3.py: Moondream3TextModel under "text", from the config's "text" part.
    **_wrappers(
        ("Moondream3ForCausalLM", "HfMoondream"),
        prefix="text.blocks",
        text="config.text",
        backbone="Moondream3TextModel",
        text_type="moondream3_text",
        since="0.21.0",
    ),
    # cohere_compass.py: CohereCompassForCausalLM on the text section.
    "CohereCompassForConditionalGeneration": Wrapper(
        backbone="CohereCompassForCausalLM",
        text_type="cohere_compass_text",
        rewrite="cohere_compass",
        since="0.30.0",
    ),
    # vllm/models/muse_spark: MuseSpark1xForCausalLM on the text section.
    "MuseSparkForConditionalGeneration": Wrapper(
        prefix="model.layers", backbone="MuseSpark1xForCausalLM", since="0.33.0"
    ),
    # interns2_preview.py / interns2_mobius.py (Qwen3.5-MoE's decoder layers) and
    # minicpm_ocr.py (MiniCPM-V 4.6's Qwen3.5 text model).
    "InternS2PreviewForConditionalGeneration": Wrapper(backbone="Qwen3_5MoeForCausalLM", since="0.22.0"),
    "InternS2MobiusForConditionalGeneration": Wrapper(backbone="Qwen3_5MoeForCausalLM", since="0.28.0"),
    "MiniCPMOcrForConditionalGeneration": Wrapper(backbone="Qwen3_5ForCausalLM", since="0.33.0"),
}

# Wrappers first registered from vLLM 0.12 on.
_NEWER_WRAPPERS: dict[str, Wrapper] = {
    # hyperclovax_vision_v2.py: text_config's registered model (HyperCLOVAX, Llama, GPT-2)
    "HCXVisionV2ForCausalLM": Wrapper(text_type="hyperclovax", since="0.18.0"),
}

WRAPPERS: dict[str, Wrapper] = {
    **_MULTIMODAL,
    **_RECURRENT_WRAPPERS,
    **_KV_SHARING_WRAPPERS,
    **_MLA_WRAPPERS,
    **_MULTIMODAL_WRAPPERS,
    **_NEWER_WRAPPERS,
}

# Text models vLLM builds only inside a wrapper (not registered under their own
# name), by their vLLM class name; a wrapper's ``backbone`` may name them.
WRAPPED_TEXT: dict[str, Entry] = {
    # cosmos3_edge.py: Nemotron-H attention ("*") layers, head_dim else hidden / heads.
    "Cosmos3EdgeForCausalLM": Entry("dense", "wrapped:pattern_attention"),
    # molmo2.py Molmo2Attention: head_dim read as it is, no window of its own.
    "Molmo2TextModel": Entry("dense", "dense:dense", {"head": "required", "window": "model"}),
    # moondream3.py Moondream3Attention: dim / n_heads, n_kv_heads, under "text.blocks".
    "Moondream3TextModel": Entry(
        "dense",
        "dense:dense",
        {"head": "hidden", "window": "model", "prefix": "text.blocks", "attn": "attn.attn"},
        keys={
            "num_hidden_layers": "n_layers",
            "num_attention_heads": "n_heads",
            "num_key_value_heads": "n_kv_heads",
            "hidden_size": "dim",
            "max_position_embeddings": "max_context",
        },
        # vllm/transformers_utils/configs/moondream3.py Moondream3TextConfig
        defaults={"n_layers": 24, "n_heads": 32, "n_kv_heads": 32, "dim": 2048, "max_context": 4096},
        model_type="moondream3_text",
    ),
    # cohere_compass.py CohereCompassAttention: hidden / heads (the config class
    # overwrites head_dim so), sliding where layer_types says so.
    "CohereCompassForCausalLM": Entry("sliding-window hybrid", "dense:dense", {"head": "hidden"}),
    # vllm/models/muse_spark/nvidia/model.py MuseSpark1xAttention: head_dim, sliding
    # where layer_types says so.
    "MuseSpark1xForCausalLM": Entry("sliding-window hybrid", "dense:dense", {"head": "required"}),
}

# Registered architectures kvplan refuses, and why (vLLM 0.33.0's source): a spec
# kind kvplan does not model, or a wrapper not checked against vLLM's own model.
NOT_DERIVED: dict[str, str] = {
    "KimiK3ForConditionalGeneration": (
        "its full-rank-gate KDA layers keep prefill checkpoint blocks in their Mamba spec "
        "(num_prefill_checkpoint_blocks, FlashKDA's 16-token alignment; "
        "vllm/models/kimi_k3/nvidia/kda.py:901-909), which kvplan does not model"
    ),
    "Dots3NoteForCausalLM": (
        "its sliding-window MLA layers need SlidingWindowMLASpec "
        "(vllm/models/dots3_note/nvidia/model.py:467-480), which kvplan does not model"
    ),
    # Wrappers of text models kvplan derives, not checked against vLLM's own model code:
    # vLLM builds them only from checkpoint files kvplan's checks cannot stand in for.
    "OpenPanguVLForConditionalGeneration": (
        "vLLM's openpangu_vl.py needs the checkpoint's image processor to build the model, so "
        "its text model (PanguEmbedded under openpangu.language_model) is not checked against vLLM"
    ),
    "DiffusionGemmaForBlockDiffusion": (
        "its text config class rewrites the sliding window and per-layer head sizes "
        "(DiffusionGemmaTextConfig), which kvplan does not reproduce"
    ),
    "UnlimitedOCRForCausalLM": (
        "its decoder layers keep an R-SWA cache (RSWASpec: the prompt plus the last "
        "rswa_window generated tokens; vllm/v1/kv_cache_interface.py:816), which kvplan does not model"
    ),
    "VoxtralRealtimeGeneration": (
        "its causal Whisper encoder keeps a pooled KV cache (tokens_per_state "
        "1/block_pool_size; vllm/model_executor/models/whisper_causal.py:411-426), "
        "which kvplan does not model"
    ),
}

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
    "deepseek_v2": "DeepseekV2ForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM",
    "cohere2": "Cohere2ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "granite": "GraniteForCausalLM",
    "granitemoe": "GraniteMoeForCausalLM",
    "exaone4": "Exaone4ForCausalLM",
    "opt": "OPTForCausalLM",
}


# Architectures vLLM registers whose KV cache needs a spec kind kvplan does not model:
# name -> what is missing (vLLM's spec class and where the model builds it).  They are
# refused with that reason, never guessed.
_NEWER_REFUSED: dict[str, str] = {
    "DeepseekV4ForCausalLM": (
        "the compressed sparse attention's compressor cache "
        "(SlidingWindowMLASpec, vllm/models/deepseek_v4/compressor.py)"
    ),
    "Glm5NextForCausalLM": "a ring-buffer attention cache (CircularBufferSpec, vllm/models/glm5next/common/attention.py)",
    "Qwen4ExpForCausalLM": "a ring-buffer attention cache (CircularBufferSpec, vllm/models/qwen4_exp/common/qsa_cache.py)",
    "Step5ForCausalLM": "a ring-buffer attention cache (CircularBufferSpec, vllm/models/step5/nvidia/csa_tail_ring.py)",
    **dict.fromkeys(
        ("InklingForCausalLM", "InklingForConditionalGeneration"),
        "the short-convolution states kept as a paged sliding-window cache (SlidingWindowSpec with "
        "head_size_v 0, the conv streams packed into head_size, vllm/models/inkling/nvidia/sconv_swa_attn.py)",
    ),
}

REFUSED: dict[str, str] = {**_NEWER_REFUSED}


def known(name: str) -> bool:
    """Whether kvplan derives the architecture ``name`` (directly or as a wrapper)."""
    return name in ARCHITECTURES or name in WRAPPERS
