"""What differs between vLLM releases, from the harness's point of view.

Runs inside a release's virtual environment.  It maps kvplan's layer
descriptions onto the release's spec classes and calls the release's planner
entry point the way its ``EngineCore._initialize_kv_caches`` does:

* 0.10.2: ``get_kv_cache_config`` per worker, then ``unify_kv_cache_configs``;
* 0.11.0 - 0.32.0: ``get_kv_cache_configs(vllm_config, specs, memory)``;
* 0.33.0+: ``get_global_kv_cache_groups`` then
  ``get_kv_cache_configs(vllm_config, specs, memory, global_groups)``
  (both from ``vllm.v1.core.kv_cache_planning``);

followed, where the release has them, by ``generate_scheduler_kv_cache_config``
and ``update_kv_cache_capacity`` (the engine logs the capacity from there in
0.28.0+).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from fractions import Fraction
from typing import Any

import torch

DTYPES: dict[str, torch.dtype] = {
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
    "fp8": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
    "uint8": torch.uint8,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


class Unsupported(Exception):
    """The release cannot express a scenario's layer."""


def _module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class Release:
    """Entry points and spec classes of the vLLM release in this environment."""

    def __init__(self) -> None:
        import vllm

        self.version = getattr(vllm, "__version__", "unknown")
        self.interface = importlib.import_module("vllm.v1.kv_cache_interface")
        self.utils = importlib.import_module("vllm.v1.core.kv_cache_utils")
        self.planning = _module("vllm.v1.core.kv_cache_planning")

    # ---------------------------------------------------------------- specs
    def _cls(self, name: str) -> type:
        cls = getattr(self.interface, name, None)
        if cls is None:
            raise Unsupported(f"vllm {self.version} has no {name}")
        return cls

    def build_spec(self, name: str, layer: dict[str, Any]) -> Any:
        """One layer description -> the release's KVCacheSpec instance."""
        kind = layer["type"]
        kwargs: dict[str, Any] = {"block_size": layer.get("block_size", 16)}
        if kind == "mamba":
            cls = self._cls("MambaSpec")
            kwargs["shapes"] = tuple(tuple(s) for s in layer["shapes"])
            kwargs["dtypes"] = tuple(DTYPES[d] for d in layer["dtypes"])
            optional = (
                "page_size_padded",
                "mamba_type",
                "num_prefill_checkpoint_blocks",
                "prefill_checkpoint_alignment",
            )
        else:
            kwargs["num_kv_heads"] = layer["num_kv_heads"]
            kwargs["head_size"] = layer["head_size"]
            kwargs["dtype"] = DTYPES[layer["dtype"]]
            optional = ("head_size_v", "page_size_padded")
            if kind == "full":
                cls = self._cls("FullAttentionSpec")
                optional += ("sliding_window", "attention_chunk_size")
            elif kind == "sliding_window":
                cls = self._cls("SlidingWindowSpec")
                kwargs["sliding_window"] = layer["sliding_window"]
            elif kind == "chunked_local":
                cls = self._cls("ChunkedLocalAttentionSpec")
                kwargs["attention_chunk_size"] = layer["attention_chunk_size"]
            elif kind == "mla":
                mla_cls = getattr(self.interface, "MLAAttentionSpec", None)
                if mla_cls is not None:
                    cls = mla_cls
                    optional += ("cache_dtype_str",)
                else:
                    # Releases before MLAAttentionSpec describe MLA layers as
                    # FullAttentionSpec(use_mla=True).
                    cls = self._cls("FullAttentionSpec")
                    if layer.get("cache_dtype_str") == "fp8_ds_mla":
                        raise Unsupported(f"vllm {self.version}: no cache_dtype_str on MLA specs")
            else:
                raise Unsupported(f"unknown layer type {kind!r}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in optional:
            if key in layer and layer[key] is not None:
                kwargs[key] = layer[key]
        if "use_mla" in fields:
            kwargs["use_mla"] = kind == "mla"
        if "mamba_type" in kwargs:
            kwargs["mamba_type"] = self._mamba_type(fields["mamba_type"], kwargs["mamba_type"])
        for key in list(kwargs):
            if key not in fields:
                raise Unsupported(f"vllm {self.version}: {cls.__name__} has no field {key!r} (layer {name})")
        return cls(**kwargs)

    @staticmethod
    def _mamba_type(fld: dataclasses.Field, value: str) -> Any:
        default = fld.default
        if isinstance(default, enum.Enum):
            # Older releases name gated delta nets "gdn_attention"; the enum calls it GDN_ATTN.
            value = {"gdn_attention": "gdn_attn", "linear_attention": "linear"}.get(value, value)
            enum_cls = type(default)
            for member in enum_cls:
                if value.lower() in (member.name.lower(), str(member.value).lower()):
                    return member
            raise Unsupported(f"mamba_type {value!r} not in {enum_cls.__name__}")
        return value

    # -------------------------------------------------------------- planning
    def plan(
        self,
        vllm_config: Any,
        specs: list[dict[str, Any]],
        memory: list[int],
    ) -> list[Any]:
        """Run the release's planner, as its engine core does."""
        if not any(specs):
            # The engine core hands attention-free models zero bytes.
            memory = [0] * len(specs)
        if self.planning is not None and hasattr(self.planning, "get_global_kv_cache_groups"):
            groups = self.planning.get_global_kv_cache_groups(vllm_config, specs)
            return self.planning.get_kv_cache_configs(vllm_config, specs, memory, groups)
        if hasattr(self.utils, "get_kv_cache_configs"):
            return self.utils.get_kv_cache_configs(vllm_config, specs, memory)
        configs = [
            self.utils.get_kv_cache_config(vllm_config, spec, mem)
            for spec, mem in zip(specs, memory, strict=True)
        ]
        return self.utils.unify_kv_cache_configs(configs)

    def scheduler_view(self, vllm_config: Any, configs: list[Any]) -> Any | None:
        """The engine core's post-planning step: scheduler config and capacity."""
        gen = getattr(self.utils, "generate_scheduler_kv_cache_config", None)
        if gen is None:
            return None
        sched = gen(configs)
        vllm_config.cache_config.num_gpu_blocks = sched.num_blocks
        if sched.kv_cache_groups:
            vllm_config.cache_config.block_size = min(
                g.kv_cache_spec.block_size for g in sched.kv_cache_groups
            )
            update = getattr(self.utils, "update_kv_cache_capacity", None)
            if update is not None:
                update(vllm_config, sched)
        return sched

    def capacity(self, vllm_config: Any, config: Any) -> dict[str, Any]:
        """Unrounded values of the release's capacity functions for one config."""
        out: dict[str, Any] = {}
        if not config.kv_cache_groups:
            return out
        conc = getattr(self.utils, "get_max_concurrency_for_kv_cache_config", None)
        if conc is None and self.planning is not None:
            conc = getattr(self.planning, "get_max_concurrency_for_kv_cache_config", None)
        if conc is not None:
            out["max_concurrency"] = float(conc(vllm_config, config))
        cap = getattr(self.utils, "get_kv_cache_capacity", None)
        if cap is not None:
            tokens, value = cap(vllm_config, config)
            out["num_tokens"] = int(tokens)
            out["max_concurrency_from_capacity"] = float(value)
        return out


def to_json(obj: Any) -> Any:
    """Config/spec objects -> plain JSON values (dtypes by kvplan name)."""
    if isinstance(obj, torch.dtype):
        return DTYPE_NAMES.get(obj, str(obj).removeprefix("torch."))
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, Fraction):
        return str(obj)
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_json(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        if hasattr(obj, "page_size_bytes") and hasattr(obj, "block_size"):
            out["class"] = type(obj).__name__
            try:
                out["page_size_bytes"] = int(obj.page_size_bytes)
            except Exception as exc:  # noqa: BLE001 - record, never stop
                out["page_size_bytes"] = f"error: {type(exc).__name__}: {exc}"
        for fld in dataclasses.fields(obj):
            out[fld.name] = to_json(getattr(obj, fld.name))
        return out
    return repr(obj)
