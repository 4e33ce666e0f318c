"""``--speculative-config``: vLLM's speculative decoding options, as vLLM spells them.

The value is the JSON object ``vllm serve --speculative-config '{...}'`` takes
(or the same mapping under ``serving: speculative_config:`` in a model YAML).
kvplan reads the keys that shape the KV cache: the method, the number of
speculative tokens, the draft model (EAGLE heads, draft models) and the
draft's KV cache dtype.  The other keys vLLM accepts are taken and ignored;
a key vLLM does not know is an error, as in vLLM.
"""

from __future__ import annotations

import json
from typing import Any

from kvplan.dtypes import KV_CACHE_DTYPES
from kvplan.errors import InputError
from kvplan.records import record

FIELD = "speculative_config"

# The MTP method names vLLM accepts (config/speculative.py MTPModelTypes); vLLM
# rewrites each of them to "mtp".
MTP_METHODS: frozenset[str] = frozenset(
    {
        "mtp",
        "deepseek_mtp",
        "dots3_note_mtp",
        "mimo_mtp",
        "mimo_v2_mtp",
        "glm4_moe_mtp",
        "glm4_moe_lite_mtp",
        "glm_ocr_mtp",
        "ernie_mtp",
        "nemotron_h_mtp",
        "exaone_moe_mtp",
        "exaone4_5_mtp",
        "qwen3_next_mtp",
        "qwen4_exp_mtp",
        "qwen3_5_mtp",
        "longcat_flash_mtp",
        "bailing_hybrid_v3_mtp",
        "minimax_m3_mtp",
        "bailing_hybrid_mtp",
        "kimi_k3_mtp",
        "pangu_ultra_moe_mtp",
        "step3p5_mtp",
        "step5_mtp",
        "hy_v3_mtp",
        "hy_v4_mtp",
        "gemma4_mtp",
        "inkling_mtp",
        "glm5_next_mtp",
    }
)
# Methods whose proposer keeps no KV cache of its own.
MODEL_FREE_METHODS: frozenset[str] = frozenset({"ngram", "ngram_gpu", "suffix"})
OTHER_METHODS: frozenset[str] = frozenset(
    {"eagle", "eagle3", "draft_model", "dflash", "dspark", "extract_hidden_states", "custom_class"}
)

# Every key of vLLM 0.33.0's SpeculativeConfig a user may set.
KNOWN_KEYS: frozenset[str] = frozenset(
    {
        "enforce_eager",
        "num_speculative_tokens",
        "model",
        "method",
        "draft_tensor_parallel_size",
        "tensor_parallel_size",
        "quantization",
        "moe_backend",
        "attention_backend",
        "kv_cache_dtype",
        "max_model_len",
        "revision",
        "code_revision",
        "index_share_for_mtp_iteration",
        "disable_padded_drafter_batch",
        "disable_eagle_block_drop",
        "disable_lookahead_block_hashes",
        "draft_lm_head_quantization",
        "use_local_argmax_reduction",
        "use_heterogeneous_vocab",
        "prompt_lookup_max",
        "prompt_lookup_min",
        "parallel_drafting",
        "num_speculative_tokens_per_batch_size",
        "suffix_decoding_max_tree_depth",
        "suffix_decoding_max_cached_requests",
        "suffix_decoding_max_spec_factor",
        "suffix_decoding_min_token_prob",
        "rejection_sample_method",
        "synthetic_acceptance_rates",
        "synthetic_acceptance_length",
        "enable_adaptive_verification",
        "draft_sample_method",
        "dspark_draft_topk",
        "xpress_topc",
        "fly_window_size",
        "fly_entropy_threshold",
        "fly_entropy_top_k",
    }
)


@record(frozen=True, eq=False)
class SpeculativeConfig:
    """The speculative decoding options kvplan uses.

    ``method`` is vLLM's resolved method: every MTP alias becomes ``mtp``, a
    missing method is ``ngram`` for ``model: ngram`` and ``draft_model``
    otherwise.  ``raw`` keeps the mapping as given (for display).
    """

    method: str
    num_speculative_tokens: int
    model: str | None = None
    kv_cache_dtype: str | None = None
    draft_tensor_parallel_size: int | None = None
    raw: tuple[tuple[str, Any], ...] = ()

    @property
    def given_method(self) -> str:
        """The method as the user spelled it (``deepseek_mtp``, ``eagle3``, ...)."""
        return str(dict(self.raw).get("method") or self.method)


def _bad(
    message: str, source: str | None, key: str, value: Any = None, hint: str | None = None
) -> InputError:
    field = f"{FIELD}.{key}" if key else FIELD
    return InputError(
        message, source=source, field=f"serving.{field}" if source else field, value=value, hint=hint
    )


def parse(value: Any, source: str | None) -> SpeculativeConfig:
    """A ``--speculative-config`` value (JSON text or a mapping) as a ``SpeculativeConfig``."""
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _bad(
                f"is not valid JSON ({exc.msg} at column {exc.colno})",
                source,
                "",
                value,
                hint='write it as vLLM does, e.g. \'{"method": "deepseek_mtp", "num_speculative_tokens": 1}\'',
            ) from None
    if not isinstance(data, dict):
        raise _bad("must be a JSON object", source, "", value)
    unknown = sorted(k for k in data if k not in KNOWN_KEYS)
    if unknown:
        raise _bad(
            "is not a field of vLLM's SpeculativeConfig",
            source,
            str(unknown[0]),
            hint="known: " + ", ".join(sorted(KNOWN_KEYS)),
        )
    if data.get("tensor_parallel_size") is not None:
        # vLLM's own refusal, word for word.
        raise _bad(
            "'tensor_parallel_size' is not a valid argument in the speculative_config. "
            "Please pass 'draft_tensor_parallel_size' instead.",
            source,
            "tensor_parallel_size",
        )
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("must be a string (a draft model path or name)", source, "model", model)
    method = data.get("method")
    if method is not None and not isinstance(method, str):
        raise _bad("must be a string", source, "method", method)
    if method is None:
        method = "ngram" if model in ("ngram", "[ngram]") else "draft_model"
    if method == "[ngram]":
        method = "ngram"
    if method in MTP_METHODS:
        method = "mtp"
    if method not in MTP_METHODS | MODEL_FREE_METHODS | OTHER_METHODS:
        raise _bad(
            "is not a speculative method vLLM knows",
            source,
            "method",
            data.get("method"),
            hint="e.g. mtp, deepseek_mtp, eagle, eagle3, ngram, suffix, draft_model",
        )
    tokens = data.get("num_speculative_tokens")
    if tokens is None:
        raise _bad(
            "num_speculative_tokens must be provided with speculative model unless the draft "
            "model config contains an n_predict parameter.",
            source,
            "num_speculative_tokens",
            hint="kvplan needs it given",
        )
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 < tokens <= 1024:
        raise _bad("must be a whole number from 1 to 1024", source, "num_speculative_tokens", tokens)
    dtype = data.get("kv_cache_dtype")
    if dtype is not None and dtype not in KV_CACHE_DTYPES:
        raise _bad(
            "unknown KV cache dtype",
            source,
            "kv_cache_dtype",
            dtype,
            hint="one of " + ", ".join(KV_CACHE_DTYPES),
        )
    draft_tp = data.get("draft_tensor_parallel_size")
    if draft_tp is not None and (isinstance(draft_tp, bool) or not isinstance(draft_tp, int) or draft_tp < 1):
        raise _bad("must be a whole number of at least 1", source, "draft_tensor_parallel_size", draft_tp)
    if method in ("eagle", "eagle3", "draft_model", "dflash") and not model:
        raise _bad(
            f"method {method} needs the draft model (`model`)",
            source,
            "model",
            hint="a local directory with the draft's config.json, a preset, or a cached hub id",
        )
    return SpeculativeConfig(
        method=method,
        num_speculative_tokens=tokens,
        model=model,
        kv_cache_dtype=dtype,
        draft_tensor_parallel_size=draft_tp,
        raw=tuple(sorted(data.items())),
    )


def num_speculative_tokens(config: SpeculativeConfig | None) -> int:
    """vLLM's ``num_speculative_tokens``: 0 without speculative decoding."""
    return config.num_speculative_tokens if config is not None else 0
