"""A minimal stand-in for vLLM's ``VllmConfig``, built for the KV cache planner.

The planner only reads a handful of configuration attributes.  Building a real
``VllmConfig`` would need a model on disk, a platform and much more, so the
harness hands the planner light objects instead:

* attributes that a scenario decides (``max_model_len``, ``block_size``, ...)
  are set explicitly;
* properties and methods that the planner calls on a config section are taken
  from the release's own config class (``VllmConfig``, ``CacheConfig``, ...)
  and evaluated against the stand-in, so their logic stays vLLM's;
* any other attribute falls back to the class-level default of the release's
  config class when that default is a plain value, and is recorded;
* anything else raises ``AttributeError`` and is recorded, so a fixture always
  lists what the planner asked for and did not get.

This module runs inside a release's virtual environment and must stay
compatible with every vLLM release the harness drives.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

_PLAIN = (bool, int, float, str, type(None))


class AccessLog:
    """Which stand-in attributes were answered by a fallback or were missing."""

    def __init__(self) -> None:
        self.from_release_class: set[str] = set()
        self.defaulted: dict[str, Any] = {}
        self.missing: set[str] = set()

    def as_dict(self) -> dict[str, Any]:
        return {
            "from_release_class": sorted(self.from_release_class),
            "defaulted": {k: self.defaulted[k] for k in sorted(self.defaulted)},
            "missing": sorted(self.missing),
        }


class Section:
    """One config section (``model_config``, ``cache_config``, ...)."""

    def __init__(self, path: str, real_cls: type | None, log: AccessLog, **values: Any) -> None:
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_real_cls", real_cls)
        object.__setattr__(self, "_log", log)
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def __getattr__(self, name: str) -> Any:
        # Only reached when the attribute was not set explicitly.
        if name.startswith("__"):
            raise AttributeError(name)
        path = f"{self._path}.{name}"
        real_cls = self._real_cls
        if real_cls is not None:
            try:
                attr = inspect.getattr_static(real_cls, name)
            except AttributeError:
                attr = None
            if isinstance(attr, property) and attr.fget is not None:
                self._log.from_release_class.add(path)
                return attr.fget(self)
            if isinstance(attr, functools.cached_property):
                self._log.from_release_class.add(path)
                return attr.func(self)
            if isinstance(attr, (staticmethod, classmethod)):
                self._log.from_release_class.add(path)
                return getattr(real_cls, name)
            if inspect.isfunction(attr):
                self._log.from_release_class.add(path)
                return attr.__get__(self, type(self))
            default = _dataclass_default(real_cls, name)
            if default is not _NO_DEFAULT:
                self._log.defaulted[path] = default
                return default
        self._log.missing.add(path)
        raise AttributeError(f"config stand-in has no attribute {path!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        shown = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return f"<{self._path} stand-in {shown}>"


_NO_DEFAULT = object()


def _dataclass_default(real_cls: type, name: str) -> Any:
    """A plain class-level default of a (pydantic) dataclass field, if any."""
    fields = getattr(real_cls, "__dataclass_fields__", {})
    fld = fields.get(name)
    if fld is not None:
        import dataclasses

        if fld.default is not dataclasses.MISSING and isinstance(fld.default, _PLAIN):
            return fld.default
        return _NO_DEFAULT
    try:
        value = inspect.getattr_static(real_cls, name)
    except AttributeError:
        return _NO_DEFAULT
    if isinstance(value, _PLAIN):
        return value
    return _NO_DEFAULT


def _release_config_classes() -> dict[str, type | None]:
    """The release's own config classes, looked up by name."""
    import vllm.config as cfg

    names = {
        "vllm_config": "VllmConfig",
        "model_config": "ModelConfig",
        "cache_config": "CacheConfig",
        "scheduler_config": "SchedulerConfig",
        "parallel_config": "ParallelConfig",
        "device_config": "DeviceConfig",
        "attention_config": "AttentionConfig",
    }
    return {key: getattr(cfg, cls_name, None) for key, cls_name in names.items()}


def build_vllm_config(scenario: dict[str, Any], log: AccessLog) -> Section:
    """Build the stand-in for one scenario (see tests/parity/README.md)."""
    classes = _release_config_classes()
    auto_fit = scenario["max_model_len"] == -1
    max_model_len = scenario.get("model_max_model_len", 131072) if auto_fit else scenario["max_model_len"]
    workers = scenario["workers"]
    tp = scenario.get("tp", 1)
    pp = len(workers)
    dcp = scenario.get("dcp", 1)
    layers = [spec for w in workers for spec in w["layers"].values()]
    attn_block_sizes = [spec.get("block_size", 16) for spec in layers if spec["type"] != "mamba"]
    block_size = scenario.get("cache_block_size", min(attn_block_sizes) if attn_block_sizes else 16)
    has_mamba = any(spec["type"] == "mamba" for spec in layers)
    has_mla = any(spec["type"] == "mla" for spec in layers)

    model = Section(
        "model_config",
        classes["model_config"],
        log,
        max_model_len=max_model_len,
        original_max_model_len=-1 if auto_fit else max_model_len,
        architectures=list(scenario.get("architectures", ["LlamaForCausalLM"])),
        # True only for models that declare their own grouping (SupportsKVCacheGrouping).
        supports_kv_cache_grouping=False,
        is_attention_free=not layers,
        is_hybrid=has_mamba,
        has_inner_state=has_mamba,
        use_mla=has_mla,
        is_encoder_decoder=False,
        uses_mrope=False,
        hf_config=None,
        hf_text_config=None,
    )
    model.get_total_num_hidden_layers = lambda: scenario.get("num_hidden_layers", len(layers))
    scheduler = Section(
        "scheduler_config",
        classes["scheduler_config"],
        log,
        max_num_batched_tokens=scenario["max_num_batched_tokens"],
        max_num_seqs=scenario["max_num_seqs"],
        max_num_encoder_input_tokens=scenario["max_num_batched_tokens"],
        encoder_cache_size=scenario["max_num_batched_tokens"],
        disable_hybrid_kv_cache_manager=scenario["disable_hybrid_kv_cache_manager"],
        async_scheduling=scenario.get("async_scheduling", False),
        enable_chunked_prefill=True,
        max_model_len=max_model_len,
    )
    parallel = Section(
        "parallel_config",
        classes["parallel_config"],
        log,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        data_parallel_size=1,
        world_size=tp * pp,
        decode_context_parallel_size=dcp,
        prefill_context_parallel_size=1,
        cp_kv_cache_interleave_size=1,
        dcp_kv_cache_interleave_size=1,
    )
    cache = Section(
        "cache_config",
        classes["cache_config"],
        log,
        block_size=block_size,
        num_gpu_blocks_override=scenario["num_gpu_blocks_override"],
        num_gpu_blocks=None,
        num_cpu_blocks=None,
        mamba_cache_mode=scenario.get("mamba_cache_mode", "none"),
        mamba_block_size=None,
        enable_prefix_caching=scenario.get("enable_prefix_caching", True),
        kv_cache_layout=scenario.get("kv_cache_layout", "LBNHC"),
        prefix_cache_retention_interval=None,
        kv_cache_size_tokens=None,
        kv_cache_max_concurrency=None,
        kv_cache_memory_bytes=None,
        cache_dtype=scenario.get("cache_dtype", "auto"),
        sliding_window=None,
    )
    device = Section("device_config", classes["device_config"], log, device_type="cuda")
    attention = Section("attention_config", classes["attention_config"], log, hisparse_config=None)
    vllm_config = Section(
        "vllm_config",
        classes["vllm_config"],
        log,
        model_config=model,
        scheduler_config=scheduler,
        parallel_config=parallel,
        cache_config=cache,
        device_config=device,
        attention_config=attention,
        speculative_config=None,
        kv_transfer_config=None,
        ec_transfer_config=None,
        kv_events_config=None,
        lora_config=None,
        use_v2_model_runner=False,
    )
    return vllm_config
