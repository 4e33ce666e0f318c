"""Serving options: the ``serving:`` section of a model YAML merged with flags.

A flag beats the YAML; every value is validated here, once, with the field
named in the error.  Each option is spelled as kvplan's flag spells it
(``tp``) or as vLLM's engine argument does (``tensor_parallel_size``); both
name the same field, and giving both with different values is an error.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from kvplan.dtypes import KV_CACHE_DTYPES
from kvplan.errors import InputError
from kvplan.records import record
from kvplan.sizes import parse_size

if TYPE_CHECKING:
    from kvplan.inputs.speculative import SpeculativeConfig

# vLLM's MambaDType and MambaCacheMode literals (vllm/config/cache.py) over all
# releases; which of them a release accepts is in kvplan.releases.
MAMBA_DTYPES: tuple[str, ...] = ("auto", "float32", "float16", "bfloat16")
MAMBA_CACHE_MODES: tuple[str, ...] = ("none", "align", "all")


@record(frozen=True, eq=False)
class Serving:
    """vLLM engine options that shape the KV cache (None: not given, vLLM's default applies).

    ``dp`` and ``enable_expert_parallel`` do not change a worker's KV cache
    specs (attention is sharded by TP alone); ``expert_parallel_size`` is how
    many ranks share the routed experts, for the weights estimate.
    """

    tp: int = 1
    pp: int = 1
    dcp: int = 1
    dp: int = 1
    enable_expert_parallel: bool = False
    pp_layer_partition: tuple[int, ...] | None = None
    gpu: str | None = None
    gpu_memory: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_memory: tuple[int, ...] | None = None
    cpu_offload_gb: float = 0.0
    max_model_len: int | None = None
    block_size: int | None = None
    kv_cache_dtype: str = "auto"
    num_gpu_blocks_override: int | None = None
    disable_hybrid_kv_cache_manager: bool | None = None
    enable_prefix_caching: bool | None = None
    mamba_cache_mode: str | None = None
    mamba_block_size: int | None = None
    mamba_cache_dtype: str = "auto"
    mamba_ssm_cache_dtype: str = "auto"
    async_scheduling: bool | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    vllm_version: str | None = None
    enforce_eager: bool = False
    probe: bool = False
    quantization: str | None = None
    dtype: str | None = None
    usage_context: str | None = None
    performance_mode: str | None = None
    flashinfer_sampler: bool | None = None
    speculative_config: SpeculativeConfig | None = None

    @property
    def gpus(self) -> int:
        """GPUs the setup occupies: TP x PP x DP (DCP reuses the TP ranks)."""
        return self.tp * self.pp * self.dp

    @property
    def expert_parallel_size(self) -> int:
        """Ranks the routed experts are split over: TP x DP with expert parallelism, else 1
        (vLLM's FusedMoE then divides each expert over TP x DP instead)."""
        return self.tp * self.dp if self.enable_expert_parallel else 1


FIELD_NAMES = tuple(f.name for f in fields(Serving))

# vLLM's ``--quantization`` names: the union of QuantizationMethods
# (vllm/model_executor/layers/quantization/__init__.py) over the releases 0.10.0 - 0.33.0.
QUANTIZATION_METHODS = (
    "aqlm", "auto-round", "auto_awq", "auto_gptq", "awq", "awq_marlin", "bitblas", "bitsandbytes",
    "compressed-tensors", "cpu_awq", "cpu_gptq", "deepseek_v4_fp8", "deepspeedfp", "experts_int8",
    "fbgemm_fp8", "fp8", "fp8_per_block", "fp8_per_channel", "fp8_per_tensor", "fp_quant", "gguf",
    "gpt_oss_mxfp4", "gptq", "gptq_bitblas", "gptq_marlin", "gptq_marlin_24", "hqq", "humming", "inc",
    "int8_per_channel_weight_only", "ipex", "marlin", "modelopt", "modelopt_fp4", "modelopt_mixed",
    "modelopt_mxfp8", "moe_wna16", "mxfp4", "mxfp8", "neuron_quant", "nvfp4_per_token", "online",
    "petit_nvfp4", "ptpc_fp8", "qqq", "quark", "rtn", "torchao", "tpu_int8",
)  # fmt: skip
# vLLM's ``--dtype`` choices (ModelConfig.dtype).
MODEL_DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
# ``serve``: the OpenAI server (``vllm serve``); ``llm``: the offline ``LLM`` class (also
# ``vllm bench``); ``engine``: ``AsyncEngineArgs`` used directly.  They pick different
# batch defaults (EngineArgs.get_batch_defaults).
USAGE_CONTEXTS = ("serve", "llm", "engine")
PERFORMANCE_MODES = ("balanced", "interactivity", "throughput")
_YAML_ONLY_EXCLUDED = ("probe",)

# vLLM's engine-argument names (vllm/engine/arg_utils.py) for the fields kvplan
# names differently.  ``kv_cache_memory_bytes`` takes one size (vLLM's
# human-readable integer); ``kv_cache_memory`` also takes one per PP stage.
VLLM_NAMES: dict[str, str] = {
    "tensor_parallel_size": "tp",
    "pipeline_parallel_size": "pp",
    "decode_context_parallel_size": "dcp",
    "data_parallel_size": "dp",
    "kv_cache_memory_bytes": "kv_cache_memory",
}
KNOWN_KEYS = FIELD_NAMES + tuple(VLLM_NAMES)


def _int(value: Any, name: str, source: str | None, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        else:
            raise InputError("must be a whole number", source=source, field=name, value=value)
    if not low <= value <= high:
        raise InputError(f"must be between {low} and {high}", source=source, field=name, value=value)
    return value


_HUMAN_INT = r"(\d+(?:\.\d+)?)([kKmMgGtT])"
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def human_int(value: Any, name: str, source: str | None, *, low: int, high: int) -> int:
    """A whole number as vLLM's ``human_readable_int`` reads it: ``1k`` = 1,000,
    ``1K`` = 1,024, ``25.6k`` = 25,600; decimals only with decimal (lower-case) suffixes."""
    if isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(_HUMAN_INT, text)
        if match:
            number, suffix = match.groups()
            if suffix in _DECIMAL:
                value = int(float(number) * _DECIMAL[suffix])
            elif "." in number:
                raise InputError(
                    f"decimals are not allowed with binary suffixes like {suffix}",
                    source=source,
                    field=name,
                    value=value,
                    hint=f"did you mean {number}{suffix.lower()}?",
                )
            else:
                value = int(number) * _BINARY[suffix]
    return _int(value, name, source, low=low, high=high)


def _max_model_len(value: Any, source: str | None) -> int:
    if isinstance(value, str) and value.strip().lower() in ("auto", "-1"):
        return -1
    if value == -1:
        return -1
    return human_int(value, "max_model_len", source, low=1, high=1 << 30)


def _bool(value: Any, name: str, source: str | None) -> bool:
    if isinstance(value, bool):
        return value
    raise InputError("must be true or false", source=source, field=name, value=value)


def _one_of(value: Any, name: str, source: str | None, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"must be one of {', '.join(choices)}", source=source, field=name, value=value)
    return value


def _sizes(value: Any, name: str, source: str | None) -> tuple[int, ...]:
    items = (
        value
        if isinstance(value, list | tuple)
        else str(value).split(",")
        if isinstance(value, str)
        else [value]
    )
    if not items:
        raise InputError("needs at least one size", source=source, field=name, value=value)
    return tuple(parse_size(v.strip() if isinstance(v, str) else v, field=name, source=source) for v in items)


def _partition(value: Any, source: str | None) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise InputError(
            "must be a list of layer counts per stage, e.g. 7,8,8,7",
            source=source,
            field="pp_layer_partition",
            value=value,
        )
    return tuple(
        _int(v.strip() if isinstance(v, str) else v, "pp_layer_partition", source, low=1, high=100_000)
        for v in items
    )


def _gib(value: Any, name: str, source: str | None) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InputError("must be a number of GiB", source=source, field=name, value=value) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1 << 20:
        raise InputError("must be a number of GiB >= 0", source=source, field=name, value=value)
    return float(value)


_CHOICES = {
    "quantization": QUANTIZATION_METHODS,
    "dtype": MODEL_DTYPES,
    "usage_context": USAGE_CONTEXTS,
    "performance_mode": PERFORMANCE_MODES,
}


def _choice(value: Any, name: str, source: str | None, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(
            f"is not one of vLLM's {name} values",
            source=source,
            field=name,
            value=value,
            hint="one of " + ", ".join(choices),
        )
    return value


def _one(key: str, value: Any, source: str | None) -> Any:
    """One option's value, checked and normalised (``key`` is a field name or vLLM's name)."""
    if key in ("tp", "pp", "dcp", "dp", "tensor_parallel_size", "pipeline_parallel_size"):
        return _int(value, key, source, low=1, high=4096)
    if key in ("decode_context_parallel_size", "data_parallel_size"):
        return _int(value, key, source, low=1, high=4096)
    if key == "pp_layer_partition":
        return _partition(value, source)
    if key in ("gpu", "vllm_version"):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InputError("must be a string", source=source, field=key, value=value)
        return str(value)
    if key == "gpu_memory":
        return parse_size(value, field=key, source=source)
    if key == "kv_cache_memory":
        return _sizes(value, key, source)
    if key == "kv_cache_memory_bytes":
        if (
            isinstance(value, str)
            and not re.fullmatch(_HUMAN_INT, value.strip())
            and not value.strip().isdigit()
        ):
            return (parse_size(value, field=key, source=source),)  # 20GiB, as --kv-cache-memory
        return (human_int(value, key, source, low=1, high=1 << 50),)
    if key == "gpu_memory_utilization":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError("must be a number in (0, 1]", source=source, field=key, value=value)
        if not 0 < float(value) <= 1:
            raise InputError("must be in (0, 1]", source=source, field=key, value=value)
        return float(value)
    if key == "cpu_offload_gb":
        return _gib(value, key, source)
    if key == "max_model_len":
        return _max_model_len(value, source)
    if key in ("block_size", "mamba_block_size"):
        return _int(value, key, source, low=1, high=1 << 20)
    if key == "kv_cache_dtype":
        if value not in KV_CACHE_DTYPES:
            raise InputError(
                "unknown KV cache dtype",
                source=source,
                field=key,
                value=value,
                hint="one of " + ", ".join(KV_CACHE_DTYPES),
            )
        return value
    if key in ("mamba_cache_dtype", "mamba_ssm_cache_dtype"):
        return _one_of(value, key, source, MAMBA_DTYPES)
    if key == "mamba_cache_mode":
        return _one_of(value, key, source, MAMBA_CACHE_MODES)
    if key == "num_gpu_blocks_override":
        return _int(value, key, source, low=1, high=1 << 40)
    if key in ("max_num_batched_tokens", "max_num_seqs"):
        return human_int(value, key, source, low=1, high=1 << 30)
    if key in _CHOICES:
        return _choice(value, key, source, _CHOICES[key])
    if key == "speculative_config":
        from kvplan.inputs import speculative  # loaded only when a speculative config is given

        return value if isinstance(value, speculative.SpeculativeConfig) else speculative.parse(value, source)
    # The rest are on/off switches.
    return _bool(value, key, source)


def validate(raw: dict[str, Any], source: str | None) -> dict[str, Any]:
    """Check and normalise serving values, keyed by field name; unknown keys are errors.

    vLLM's names (``tensor_parallel_size``) map to kvplan's fields; one field
    given twice with different values (``tp`` and ``tensor_parallel_size``)
    is refused.
    """
    out: dict[str, Any] = {}
    named: dict[str, str] = {}
    for key, value in raw.items():
        if key not in KNOWN_KEYS or (key in _YAML_ONLY_EXCLUDED and source):  # probe is a flag only
            raise InputError(
                "unknown serving option",
                source=source,
                field=f"serving.{key}" if source else key,
                value=None,
                hint="known: " + ", ".join(n for n in FIELD_NAMES if n not in _YAML_ONLY_EXCLUDED),
            )
        if value is None:
            continue
        checked = _one(key, value, source)
        name = VLLM_NAMES.get(key, key)
        if name in out and out[name] != checked:
            raise InputError(
                f"conflicts with '{named[name]}' ({out[name]!r})",
                source=source,
                field=key,
                value=value,
                hint="give the option once",
            )
        out[name] = checked
        named[name] = key
    return out


def merge(
    yaml_serving: dict[str, Any],
    yaml_source: str | None,
    flags: dict[str, Any],
    pasted: dict[str, Any] | None = None,
) -> Serving:
    """The options in force: YAML values, each replaced by a flag when given.

    ``pasted``: the options of a pasted vLLM command (``--vllm-args``); they
    beat the YAML, and a flag giving the same option a different value is an
    error rather than a silent winner.
    """
    values = validate(yaml_serving, yaml_source or "serving")
    given = validate({k: v for k, v in flags.items() if v is not None}, None)
    if pasted:
        from_paste = validate(pasted, "--vllm-args")
        for name, value in from_paste.items():
            if name in given and given[name] != value:
                raise InputError(
                    f"--vllm-args gives {value!r} but the flag gives {given[name]!r}",
                    field=name,
                    hint="give the option once",
                )
        values.update(from_paste)
    values.update(given)
    return replace(Serving(), **values)
