"""Run a vLLM release's own config, model-building and KV-cache-planning code
on a CPU-only machine and report what it decides.

    python vllm_meta.py CASES.json OUT.json [--only ID,ID] [--timeout S]

CASES.json: {"cases": [{"id", "config_dir", "args", "capability", "tp", "pp",
"memory_per_worker_bytes"}, ...]} (see README.md).  OUT.json receives one
result per case; a one-line JSON summary is printed on stdout.

This file is self-contained: it must run inside any environment where a vLLM
release, torch and transformers are installed, and imports nothing else from
this repository.  ``kvplan verify`` runs it with the vLLM installed beside
kvplan; the reference oracle (tools/vllm_oracle) runs it in each release's
environment.

Process layout (fork, Linux only):

* the top process reads the cases and never imports vLLM;
* per GPU capability, a *group* process installs the stand-ins for that GPU
  and imports vLLM once;
* per case, a *case* process (forked from the group) creates the VllmConfig;
  with one worker it builds the model itself, as vLLM's in-process executor
  does; with several it forks one *stage* process per pipeline stage, as the
  multiprocessing executor runs one worker per rank, and keeps its own config
  untouched by the workers, as the engine core's is;
* the case process then runs the release's planner on the collected specs.

Every case starts from the same freshly imported state and a crash (even a
segfault) only loses that case.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import pickle
import re
import select
import signal
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path
from typing import Any

# GPUs the stand-in platform can pretend to be: compute capability ->
# (device name, total memory in bytes as torch reports it, SM count).
GPUS: dict[str, tuple[str, int, int]] = {
    "8.0": ("NVIDIA A100-SXM4-80GB", 84986036224, 108),
    "8.9": ("NVIDIA L40S", 47803531264, 142),
    "9.0": ("NVIDIA H100 80GB HBM3", 85029027840, 132),
    "10.0": ("NVIDIA B200", 191514017792, 148),
}
DEFAULT_CAPABILITY = "9.0"
GPUS_PER_NODE = 8
# CPU memory of the pretend node (vLLM checks swap space against it).
HOST_MEMORY = 2 * 1024**4

# Namespaces of torch.ops that vLLM's compiled extensions register on a CUDA
# build, keyed by the extension module that registers them.
EXTENSION_NAMESPACES = {
    "vllm._C": ["_C", "_C_cache_ops", "_C_custom_ar", "_C_cuda_utils"],
    "vllm._C_stable_libtorch": ["_C", "_C_cache_ops", "_C_custom_ar", "_C_cuda_utils"],
    "vllm._moe_C": ["_moe_C"],
    "vllm._moe_C_stable_libtorch": ["_moe_C"],
    "vllm._flashmla_C": ["_flashmla_C"],
    "vllm._flashmla_extension_C": ["_flashmla_extension_C"],
    "vllm.vllm_flash_attn._vllm_fa2_C": ["_vllm_fa2_C"],
    "vllm.vllm_flash_attn._vllm_fa3_C": ["_vllm_fa3_C"],
    "vllm._qutlass_C": ["_qutlass_C"],
    "vllm._flashkda_C": ["_flashkda_C"],
    "vllm._deepselect_C": ["deep_select"],
}

# What the compiled "is it supported" queries answer for a capability
# (major*10+minor), as the CUDA build's C++ does for a CUDA 12.8+ wheel:
# csrc/quantization/w8a8/cutlass/scaled_mm_entry.cu and friends.
CAPABILITY_OPS = {
    "_C::cutlass_scaled_mm_supports_fp8": lambda cap: cap >= 89,
    "_C::cutlass_scaled_mm_supports_block_fp8": lambda cap: cap >= 90,
    "_C::cutlass_group_gemm_supported": lambda cap: cap in (90, 100, 103),
    "_C::cutlass_scaled_mm_supports_fp4": lambda cap: cap >= 100,
    "_C::mxfp4_experts_quant_supported": lambda cap: cap >= 100,
    "_C::cutlass_sparse_scaled_mm_supported": lambda cap: cap == 90,
    "_C::is_onednn_acl_supported": lambda: False,
}


def _marlin_repack_shape(*args, **kwargs):
    """Shape-only Marlin repack (GPTQ and AWQ): the packed weight becomes
    (size_k / 16, size_n * 16 / pack_factor) with pack_factor = 32 / num_bits,
    same dtype and device.  Used where a release registers no fake; the
    signature changed (0.11 passes a permutation tensor), so the integers are
    taken in order: size_k, size_n, num_bits."""
    import torch

    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    size_k = kwargs.get("size_k", ints[0])
    size_n = kwargs.get("size_n", ints[1])
    num_bits = kwargs.get("num_bits", ints[2])
    w = tensors[0]
    return torch.empty((size_k // 16, size_n * 16 // (32 // num_bits)), dtype=w.dtype, device=w.device)


# Shape functions used only when the release registers no fake of its own.
def _no_output(*args, **kwargs):
    return None


FALLBACK_FAKES = {
    "_C::gptq_marlin_repack": _marlin_repack_shape,
    "_C::awq_marlin_repack": _marlin_repack_shape,
    # Writes the quantized activations and scales into the tensors it is given
    # (used when MLA layers dequantize their fp8 kv_b_proj through a forward).
    "_C::per_token_group_fp8_quant": _no_output,
    "_C::per_token_group_fp8_quant_packed": _no_output,
}

TOKENS_RE = re.compile(r"GPU KV cache size: ([\d,]+) tokens")
CONCURRENCY_RE = re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x")
CAPACITY_LINE_RE = re.compile(r"GPU KV cache size|Maximum concurrency")


# --------------------------------------------------------------------------
# stand-ins: everything that makes a CPU box look like one CUDA node
# --------------------------------------------------------------------------
class Standins:
    """Installs the stand-ins and counts how often each one answered."""

    def __init__(self, capability: str) -> None:
        self.capability = capability
        self.name, self.total_memory, self.sms = GPUS[capability]
        major, minor = capability.split(".")
        self.major, self.minor = int(major), int(minor)
        self.applied: list[str] = []
        self.hits: dict[str, int] = {}
        self.meta_reads: dict[str, int] = {}
        self.stub_modules: list[str] = []
        self.fakes: dict[str, Any] = dict(CAPABILITY_OPS)

    def hit(self, key: str) -> None:
        self.hits[key] = self.hits.get(key, 0) + 1

    # -- environment ----------------------------------------------------
    def environment(self, scratch: Path) -> None:
        env = {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_HOME": str(scratch / "hf"),
            "VLLM_CACHE_ROOT": str(scratch / "vllm-cache"),
            "VLLM_CONFIG_ROOT": str(scratch / "vllm-config"),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_CONFIGURE_LOGGING": "0",
            "VLLM_LOGGING_LEVEL": "INFO",
            "CUDA_VISIBLE_DEVICES": "",
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        os.environ.update(env)
        self.applied.append("env: " + ", ".join(f"{k}={v}" for k, v in env.items() if "/" not in v))

    # -- compiled extensions ----------------------------------------------
    def extension_stubs(self) -> None:
        """Empty modules in place of the wheel's CUDA extensions."""
        spec = importlib.util.find_spec("vllm")
        root = Path(spec.origin).parent
        names = set()
        for so in root.rglob("*.so"):
            rel = so.relative_to(root.parent)
            mod = ".".join(rel.parts[:-1] + (rel.name.split(".")[0],))
            names.add(mod)
        self.stub_modules = sorted(names)
        stubs = self

        class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, fullname, path=None, target=None):
                if fullname in names:
                    return importlib.machinery.ModuleSpec(fullname, self)
                return None

            def create_module(self, spec):
                return types.ModuleType(spec.name)

            def exec_module(self, module):
                stubs.hit(f"stub:{module.__name__}")
                module.__getattr__ = _stub_attr(module.__name__, stubs)
                for ns in EXTENSION_NAMESPACES.get(module.__name__, []):
                    stubs.op_namespace(ns)

        sys.meta_path.insert(0, Finder())
        self.applied.append(
            "compiled extensions replaced by empty modules (any attribute is a function that raises, "
            "except init/shutdown/set_* setup calls): " + ", ".join(self.stub_modules)
        )

    # -- torch.ops namespaces ---------------------------------------------
    def op_namespace(self, ns: str) -> None:
        import torch

        if isinstance(getattr(torch.ops, ns, None), _OpNamespace):
            return
        setattr(torch.ops, ns, _OpNamespace(ns, self))

    def register_fake_hook(self) -> None:
        """vLLM's shape-only fakes for extension ops are kept and used on calls."""
        import torch
        import torch.library

        original = torch.library.register_fake
        stubs = self

        def register_fake(op, fn=None, /, *args, **kwargs):
            name = op if isinstance(op, str) else getattr(op, "_qualname", None)
            if isinstance(name, str) and "::" in name:
                ns = name.split("::", 1)[0]
                if isinstance(getattr(torch.ops, ns, None), _OpNamespace):

                    def keep(f):
                        stubs.fakes[name] = f
                        return f

                    return keep(fn) if fn is not None else keep
            if fn is not None:
                return original(op, fn, *args, **kwargs)
            deco = original(op, *args, **kwargs)

            def guarded(f):
                # torchvision's wheel registers fakes for ops of its CUDA
                # extension, which cannot load next to a CPU torch.
                try:
                    return deco(f)
                except RuntimeError as exc:
                    if "does not exist" not in str(exc):
                        raise
                    stubs.hit(f"register_fake-skipped:{name}")
                    return f

            return guarded

        torch.library.register_fake = register_fake
        if hasattr(torch.library, "impl_abstract"):
            torch.library.impl_abstract = register_fake
        self.applied.append(
            "torch.ops namespaces of the compiled extensions resolve every op name; calls run "
            "the release's own register_fake shape functions, other calls raise"
        )

    # -- torch.cuda -------------------------------------------------------
    def torch_cuda(self) -> None:
        import torch

        st = self

        class Props:
            def __init__(self) -> None:
                self.name = st.name
                self.major, self.minor = st.major, st.minor
                self.total_memory = st.total_memory
                self.multi_processor_count = st.sms
                self.L2_cache_size = 50 * 1024 * 1024
                self.warp_size = 32
                self.gcnArchName = ""
                self.uuid = "GPU-00000000-0000-0000-0000-000000000000"

            def __repr__(self) -> str:
                return f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor})"

        def wrap(key, fn):
            def f(*a, **k):
                st.hit(key)
                return fn(*a, **k)

            return f

        # The CUDA runtime the release's wheel was built against: CUDA 13 where
        # its requirements name cu13 packages, else 12.8.
        import importlib.metadata as md

        reqs = " ".join(md.requires("vllm") or [])
        torch.version.cuda = "13.0" if "cu13" in reqs else "12.8"
        self.applied.append(f"torch.version.cuda = {torch.version.cuda!r}")
        cuda = torch.cuda
        patches = {
            "get_device_capability": lambda *a, **k: (st.major, st.minor),
            "get_device_name": lambda *a, **k: st.name,
            "get_device_properties": lambda *a, **k: Props(),
            "device_count": lambda *a, **k: GPUS_PER_NODE,
            "current_device": lambda *a, **k: 0,
            "set_device": lambda *a, **k: None,
            "synchronize": lambda *a, **k: None,
            "empty_cache": lambda *a, **k: None,
            "mem_get_info": lambda *a, **k: (st.total_memory, st.total_memory),
            "memory_allocated": lambda *a, **k: 0,
            "max_memory_allocated": lambda *a, **k: 0,
            "memory_reserved": lambda *a, **k: 0,
            "reset_peak_memory_stats": lambda *a, **k: None,
            "manual_seed": lambda *a, **k: None,
            "manual_seed_all": lambda *a, **k: None,
            "is_current_stream_capturing": lambda *a, **k: False,
        }
        for name, fn in patches.items():
            setattr(cuda, name, wrap(f"torch.cuda.{name}", fn))

        acc = getattr(torch, "accelerator", None)
        if acc is not None:
            acc_patches = {
                "empty_cache": lambda *a, **k: None,
                "synchronize": lambda *a, **k: None,
                "memory_allocated": lambda *a, **k: 0,
                "max_memory_allocated": lambda *a, **k: 0,
                "memory_reserved": lambda *a, **k: 0,
                "max_memory_reserved": lambda *a, **k: 0,
                "reset_peak_memory_stats": lambda *a, **k: None,
                "get_memory_info": lambda *a, **k: (st.total_memory, st.total_memory),
                "device_count": lambda *a, **k: GPUS_PER_NODE,
                "current_device_index": lambda *a, **k: 0,
                "set_device_index": lambda *a, **k: None,
            }
            for name, fn in acc_patches.items():
                if hasattr(acc, name):
                    setattr(acc, name, wrap(f"torch.accelerator.{name}", fn))

        class FakeStream:
            def __init__(self, *a, **k) -> None:
                self.device = torch.device("cuda", 0)

            def synchronize(self) -> None:
                pass

            def wait_stream(self, *a) -> None:
                pass

            def wait_event(self, *a) -> None:
                pass

            def record_event(self, *a):
                return FakeEvent()

            def __enter__(self):
                return self

            def __exit__(self, *a) -> None:
                pass

        class FakeEvent:
            def __init__(self, *a, **k) -> None:
                pass

            def record(self, *a, **k) -> None:
                pass

            def synchronize(self) -> None:
                pass

            def wait(self, *a, **k) -> None:
                pass

            def query(self) -> bool:
                return True

            def elapsed_time(self, *a) -> float:
                return 0.0

        cuda.Stream = FakeStream
        cuda.Event = FakeEvent
        cuda.current_stream = wrap("torch.cuda.current_stream", lambda *a, **k: FakeStream())
        cuda.default_stream = wrap("torch.cuda.default_stream", lambda *a, **k: FakeStream())
        cuda.stream = wrap("torch.cuda.stream", lambda *a, **k: contextlib.nullcontext())
        self.applied.append(
            "torch.cuda: capability, name, properties, memory, device count "
            f"({GPUS_PER_NODE}), streams and events answer as one idle GPU of a node"
        )

    # -- triton -----------------------------------------------------------
    def triton(self) -> None:
        try:
            import triton
            from triton.runtime import driver as drv
        except Exception:  # noqa: BLE001 - no triton: nothing to fake
            return
        st = self
        try:
            from triton.backends.compiler import GPUTarget
        except Exception:  # noqa: BLE001
            GPUTarget = None  # type: ignore[assignment]

        class FakeDriver:
            def get_current_target(self):
                st.hit("triton.get_current_target")
                cap = st.major * 10 + st.minor
                if GPUTarget is not None:
                    return GPUTarget("cuda", cap, 32)
                return ("cuda", cap, 32)

            def get_current_device(self):
                return 0

            def get_device_capability(self, *a):
                return (st.major, st.minor)

            def is_active(self):
                return True

            def get_active_torch_device(self):
                import torch

                return torch.device("cuda", 0)

            def __getattr__(self, name):
                raise AttributeError(f"triton driver stand-in has no {name}")

        fake = FakeDriver()
        if hasattr(drv, "set_active"):
            drv.set_active(fake)
        else:  # older triton
            drv._active = fake  # type: ignore[attr-defined]
        self.applied.append(
            f"triton: the active driver reports a CUDA target sm_{self.major}{self.minor} "
            f"(triton {getattr(triton, '__version__', '?')})"
        )

    # -- platform ---------------------------------------------------------
    def platform(self) -> Any:
        import vllm.platforms as platforms
        from vllm.platforms import cuda as vcuda
        from vllm.platforms.interface import DeviceCapability

        st = self

        class OracleCudaPlatform(vcuda.CudaPlatformBase):
            @classmethod
            def get_device_capability(cls, device_id: int = 0):
                return DeviceCapability(major=st.major, minor=st.minor)

            @classmethod
            def has_device_capability(cls, capability, device_id: int = 0) -> bool:
                if isinstance(capability, tuple):
                    return (st.major, st.minor) >= tuple(capability)
                return st.major * 10 + st.minor >= capability

            @classmethod
            def is_device_capability(cls, capability, device_id: int = 0) -> bool:
                if isinstance(capability, tuple):
                    return (st.major, st.minor) == tuple(capability)
                return st.major * 10 + st.minor == capability

            @classmethod
            def is_device_capability_family(cls, capability, device_id: int = 0) -> bool:
                return (st.major * 10 + st.minor) // 10 == capability // 10

            @classmethod
            def get_device_name(cls, device_id: int = 0) -> str:
                return st.name

            @classmethod
            def get_device_uuid(cls, device_id: int = 0) -> str:
                return "GPU-00000000-0000-0000-0000-000000000000"

            @classmethod
            def get_device_total_memory(cls, device_id: int = 0) -> int:
                return st.total_memory

            @classmethod
            def is_fully_connected(cls, physical_device_ids) -> bool:
                return True

            @classmethod
            def device_count(cls) -> int:
                return GPUS_PER_NODE

            @classmethod
            def num_compute_units(cls, device_id: int = 0) -> int:
                return st.sms

            @classmethod
            def get_device_numa_node(cls, device_id: int = 0):
                return None

            @classmethod
            def get_all_device_numa_nodes(cls):
                return None

            @classmethod
            def log_warnings(cls) -> None:
                pass

            @classmethod
            def is_pin_memory_available(cls) -> bool:
                return True

            @classmethod
            def get_current_memory_usage(cls, device=None) -> float:
                return 0.0

            @classmethod
            def graph_pool_handle(cls):
                # The CUDA graph memory pool's id, which 0.10.0's compile backend asks
                # for when the model is created; only graph capture uses it.
                st.hit("graph_pool_handle")
                return (0, 0)

        plat = OracleCudaPlatform()
        platforms._current_platform = plat
        self.device_count_helpers()
        self.host_memory()
        self.applied.append(
            f"platform: CudaPlatformBase subclass answering capability {self.capability}, "
            f"'{self.name}', {self.total_memory} bytes, {self.sms} SMs, {GPUS_PER_NODE} GPUs"
        )
        return plat

    def device_count_helpers(self) -> None:
        """vLLM's own CUDA device counters (they read CUDA_VISIBLE_DEVICES/NVML)."""
        patched = []
        for modname in ("vllm.utils.torch_utils", "vllm.utils", "vllm.platforms.cuda"):
            try:
                mod = importlib.import_module(modname)
            except Exception:  # noqa: BLE001 - not in this release
                continue
            for attr in ("cuda_device_count_stateless", "_cuda_device_count_stateless"):
                if callable(getattr(mod, attr, None)):
                    setattr(mod, attr, lambda *a, **k: GPUS_PER_NODE)
                    patched.append(f"{modname}.{attr}")
        self.device_count_patched = patched
        if patched:
            self.applied.append(f"device count {GPUS_PER_NODE}: " + ", ".join(patched))

    def host_memory(self) -> None:
        """The node's CPU memory, for vLLM's swap-space check (4 GiB per GPU)."""
        patched = []
        for modname in ("vllm.utils.mem_utils", "vllm.utils"):
            try:
                mod = importlib.import_module(modname)
            except Exception:  # noqa: BLE001
                continue
            if callable(getattr(mod, "get_cpu_memory", None)):
                mod.get_cpu_memory = lambda: HOST_MEMORY
                patched.append(f"{modname}.get_cpu_memory")
        if patched:
            self.applied.append(f"host memory {HOST_MEMORY} bytes (2 TiB): " + ", ".join(patched))

    def sweep(self) -> None:
        """Rebind copies of the patched helpers imported by name elsewhere."""
        fake = lambda *a, **k: GPUS_PER_NODE  # noqa: E731
        for name, mod in list(sys.modules.items()):
            if not name.startswith("vllm") or mod is None:
                continue
            for attr in ("cuda_device_count_stateless",):
                if (
                    callable(getattr(mod, attr, None))
                    and getattr(getattr(mod, attr), "__name__", "") != "<lambda>"
                ):
                    setattr(mod, attr, fake)
            fn = getattr(mod, "get_cpu_memory", None)
            if callable(fn) and getattr(fn, "__name__", "") != "<lambda>":
                mod.get_cpu_memory = lambda: HOST_MEMORY

    def install(self, scratch: Path) -> None:
        self.environment(scratch)
        self.extension_stubs()
        self.register_fake_hook()
        self.torch_cuda()
        self.triton()
        self.platform()


# Setup calls extension modules receive at import on a GPU box (deep_gemm's
# init/shutdown and its setters); they do nothing here.  Any other function
# of a stubbed extension raises when called.
_SETUP_CALLS = re.compile(r"^(init|shutdown|set_[a-z_0-9]+)$")


def _deep_gemm_sf_layout(standins: Standins):
    """Shape-only version of DeepGEMM's transform_sf_into_required_layout, for
    the weight scale factors vLLM hands it after loading fp8 block weights.

    DeepGEMM's rule (csrc/apis/layout.hpp): FP32 scales with 128x128 blocks on
    SM90 (or with the UE8M0 cast disabled) are kept as they are; on SM100 they
    are broadcast to one row per output channel and packed four UE8M0 bytes to
    an int32, MN-major, rows padded to a multiple of 4 (16-byte TMA alignment)
    and the K blocks to a multiple of 4.  Other inputs are not covered."""

    def transform(sf, mn, k, recipe, num_groups=None, is_sfa=False, disable_ue8m0_cast=False, **_):
        import torch

        if isinstance(recipe, tuple) and len(recipe) == 3:
            gran_mn = recipe[0] if is_sfa else recipe[1]
        else:
            gran_mn = recipe[0]
        gran_k = recipe[-1]
        standins.hit("deep_gemm-sf-layout")
        if sf.dtype == torch.float32 and gran_mn == 128 and gran_k == 128:
            if standins.major == 9 or disable_ue8m0_cast:
                return sf
            if standins.major == 10:
                groups = sf.shape[0] if sf.dim() == 3 else 1
                k_blocks = sf.shape[-1]
                rows = ((mn + 3) // 4) * 4
                cols = ((k_blocks + 3) // 4) * 4 // 4
                out = torch.empty_strided(
                    (groups, rows, cols), (rows * cols, 1, rows), dtype=torch.int32, device=sf.device
                )[:, :mn]
                return out if sf.dim() == 3 else out.squeeze(0)
        raise NotImplementedError(
            f"DeepGEMM scale layout for {sf.dtype} recipe {recipe} on sm_{standins.major}x: "
            "not covered by the CPU stand-in"
        )

    return transform


def _writes_into_outputs(name: str):
    """Kernels that write into tensors the caller allocated: on meta there is
    nothing to write, so doing nothing leaves every shape as vLLM made it."""

    def factory(standins: Standins):
        def call(*args, **kwargs):
            standins.hit(f"no-op:{name}")
            return None

        return call

    return factory


# Functions of stubbed extensions that have a shape-only stand-in.
STUB_IMPLS = {
    "transform_sf_into_required_layout": _deep_gemm_sf_layout,
    # DeepGEMM's M/K alignment for grouped contiguous layouts (a constant 128).
    "get_mk_alignment_for_contiguous_layout": lambda st: lambda: 128,
    "fp8_gemm_nt": _writes_into_outputs("deep_gemm.fp8_gemm_nt"),
}


def _stub_attr(module_name: str, standins: Standins):
    def getattr_(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in STUB_IMPLS and "deep_gemm" in module_name:
            return STUB_IMPLS[name](standins)

        def call(*args, **kwargs):
            if _SETUP_CALLS.match(name):
                standins.hit(f"stub-call:{module_name}.{name}")
                return None
            raise NotImplementedError(
                f"{module_name}.{name} is compiled code; the CPU stand-in cannot run it"
            )

        call.__name__ = name
        call.__qualname__ = f"{module_name}.{name}"
        return call

    return getattr_


class _OpNamespace(types.ModuleType):
    """A torch.ops namespace where every op exists; calls use vLLM's fakes."""

    def __init__(self, ns: str, standins: Standins) -> None:
        super().__init__(f"torch.ops.{ns}")
        self._ns = ns
        self._standins = standins

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _FakeOp(f"{self._ns}::{name}", self._standins)


class _FakeOp:
    def __init__(self, qualname: str, standins: Standins) -> None:
        self._qualname = qualname
        self._standins = standins
        self.__name__ = qualname.split("::")[1]

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self  # .default, .out, ... overloads

    def __call__(self, *args, **kwargs):
        fake = self._standins.fakes.get(self._qualname)
        if fake is None and self._qualname in FALLBACK_FAKES:
            fake = FALLBACK_FAKES[self._qualname]
            self._standins.hit(f"fallback-fake:{self._qualname}")
        if fake is None:
            raise NotImplementedError(f"compiled op {self._qualname} called on the CPU stand-in (no fake)")
        self._standins.hit(f"op:{self._qualname}")
        return fake(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<stand-in op {self._qualname}>"


# --------------------------------------------------------------------------
# meta device while building
# --------------------------------------------------------------------------
def _meta_mode(standins: Standins):
    import torch
    from torch.overrides import TorchFunctionMode

    def is_cuda(dev) -> bool:
        if dev is None:
            return False
        if isinstance(dev, torch.device):
            return dev.type == "cuda"
        if isinstance(dev, int):
            return True
        if isinstance(dev, str):
            return dev.startswith("cuda")
        return False

    meta = torch.device("meta")
    reads = standins.meta_reads
    value_fns = {
        torch.Tensor.item: "item",
        torch.Tensor.tolist: "tolist",
        torch.Tensor.__bool__: "bool",
        torch.Tensor.__int__: "int",
        torch.Tensor.__float__: "float",
        torch.Tensor.__index__: "index",
    }

    def caller() -> str:
        for frame in traceback.extract_stack()[-8:-2][::-1]:
            if "/vllm/" in frame.filename:
                return f"vllm/{frame.filename.split('/vllm/', 1)[1]}:{frame.lineno}"
        return "?"

    class MetaMode(TorchFunctionMode):
        def __torch_function__(self, func, types_, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in value_fns and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
                kind = value_fns[func]
                key = f"{kind}@{caller()}"
                reads[key] = reads.get(key, 0) + 1
                t = args[0]
                if kind == "tolist":
                    return torch.zeros(t.shape, dtype=t.dtype, device="cpu").tolist()
                if kind == "bool":
                    return False
                if kind == "float":
                    return 0.0
                if kind == "item":
                    return False if t.dtype == torch.bool else (0.0 if t.is_floating_point() else 0)
                return 0
            if func is torch.Tensor.cuda:
                standins.hit("meta:.cuda()")
                return args[0].to(meta)
            if "device" in kwargs and is_cuda(kwargs["device"]):
                standins.hit("meta:device=cuda")
                kwargs["device"] = meta
            if func is torch.Tensor.to and len(args) > 1 and is_cuda(args[1]):
                standins.hit("meta:.to(cuda)")
                args = (args[0], meta) + tuple(args[2:])
            if func in (torch.Tensor.pin_memory,):
                return args[0]
            return func(*args, **kwargs)

    return MetaMode()


# --------------------------------------------------------------------------
# logging capture
# --------------------------------------------------------------------------
class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001
            msg = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            msg += f" [{type(exc).__name__}: {str(exc)[:400]}]"
        self.records.append((record.levelname, f"{record.name}:{record.lineno}", msg))


def _install_logging() -> _Collect:
    handler = _Collect()
    lg = logging.getLogger("vllm")
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    lg.propagate = False
    return handler


# --------------------------------------------------------------------------
# JSON conversion
# --------------------------------------------------------------------------
def to_json(obj: Any, depth: int = 0) -> Any:
    import torch

    if depth > 12:
        return repr(obj)
    if isinstance(obj, torch.dtype):
        return str(obj).removeprefix("torch.")
    if isinstance(obj, torch.Size):
        return list(obj)
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else str(obj)
    if isinstance(obj, dict):
        return {str(k): to_json(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_json(v, depth + 1) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for fld in dataclasses.fields(obj):
            try:
                out[fld.name] = to_json(getattr(obj, fld.name), depth + 1)
            except Exception as exc:  # noqa: BLE001
                out[fld.name] = f"error: {type(exc).__name__}"
        return out
    return repr(obj)


def spec_json(spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"class": type(spec).__name__}
    for fld in dataclasses.fields(spec):
        out[fld.name] = to_json(getattr(spec, fld.name))
    for prop in ("page_size_bytes", "real_page_size_bytes"):
        if hasattr(type(spec), prop):
            try:
                out[prop] = int(getattr(spec, prop))
            except Exception as exc:  # noqa: BLE001
                out[prop] = f"error: {type(exc).__name__}: {exc}"
    return out


def error_json(exc: BaseException, stage: str) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):
        if "/vllm/" in frame.filename:
            where = f"vllm/{frame.filename.split('/vllm/', 1)[1]}:{frame.name}:{frame.lineno}"
            break
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "stage": stage,
        "type": type(exc).__name__,
        "message": str(exc),
        "where": where,
        "traceback_tail": "".join(tb)[-1500:],
    }


# --------------------------------------------------------------------------
# the release's code, step by step
# --------------------------------------------------------------------------
def create_config(case: dict[str, Any]):
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext

    args = dict(case.get("args") or {})
    args.setdefault("tensor_parallel_size", case.get("tp", 1))
    args.setdefault("pipeline_parallel_size", case.get("pp", 1))
    # No tokenizer unless the case asks for one (models that read token ids from it).
    args.setdefault("skip_tokenizer_init", True)
    engine_args = EngineArgs(
        model=str(case["config_dir"]),
        load_format="dummy",
        **args,
    )
    return engine_args.create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)


def _get(obj: Any, path: str, default: Any = "<absent>") -> Any:
    for part in path.split("."):
        if obj is None or not hasattr(obj, part):
            return default
        try:
            obj = getattr(obj, part)
        except Exception as exc:  # noqa: BLE001
            return f"error: {type(exc).__name__}: {exc}"
    return obj


CONFIG_FIELDS = [
    "cache_config.block_size",
    "cache_config.user_specified_block_size",
    "cache_config.mamba_block_size",
    "cache_config.mamba_cache_mode",
    "cache_config.mamba_page_size_padded",
    "cache_config.enable_prefix_caching",
    "cache_config.cache_dtype",
    "cache_config.gpu_memory_utilization",
    "cache_config.kv_cache_memory_bytes",
    "cache_config.num_gpu_blocks_override",
    "cache_config.kv_cache_layout",
    "cache_config.mamba_cache_dtype",
    "cache_config.mamba_ssm_cache_dtype",
    "model_config.max_model_len",
    "model_config.original_max_model_len",
    "model_config.dtype",
    "model_config.quantization",
    "model_config.architecture",
    "model_config.is_hybrid",
    "model_config.use_mla",
    "model_config.is_attention_free",
    "model_config.enforce_eager",
    "scheduler_config.max_num_batched_tokens",
    "scheduler_config.max_num_seqs",
    "scheduler_config.async_scheduling",
    "scheduler_config.enable_chunked_prefill",
    "scheduler_config.disable_hybrid_kv_cache_manager",
    "scheduler_config.max_concurrent_batches",
    "scheduler_config.max_in_flight_tokens",
    "scheduler_config.long_prefill_token_threshold",
    "parallel_config.tensor_parallel_size",
    "parallel_config.pipeline_parallel_size",
    "parallel_config.data_parallel_size",
    "parallel_config.enable_expert_parallel",
    "parallel_config.decode_context_parallel_size",
    "parallel_config.distributed_executor_backend",
    "parallel_config.world_size",
    "compilation_config.mode",
    "compilation_config.level",
    "compilation_config.cudagraph_mode",
    "compilation_config.cudagraph_capture_sizes",
    "compilation_config.max_cudagraph_capture_size",
    "use_v2_model_runner",
    "attention_config.backend",
    "max_concurrent_batches",
    "max_in_flight_tokens",
    "scheduler_config.disable_chunked_mm_input",
]


def config_values(vllm_config: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in CONFIG_FIELDS:
        value = _get(vllm_config, path)
        if value == "<absent>":
            continue
        if callable(value) and not isinstance(value, type):
            continue
        out[path] = to_json(value)
    mc = vllm_config.model_config
    with contextlib.suppress(Exception):
        out["model_config.num_hidden_layers"] = mc.get_total_num_hidden_layers()
    with contextlib.suppress(Exception):
        out["model_config.num_kv_heads_per_rank"] = mc.get_num_kv_heads(vllm_config.parallel_config)
    with contextlib.suppress(Exception):
        out["model_config.head_size"] = mc.get_head_size()
    # The V1 engine's batch pipelining, where the release has it.
    with contextlib.suppress(Exception):
        from vllm.v1.engine.core import EngineCore  # noqa: F401
    return out


def _parallel_world(
    config: Any, tp: int, pp: int, tp_rank: int, pp_rank: int, store_dir: Path, dp_rank: int = 0
) -> None:
    import torch.distributed as dist
    import vllm.distributed.parallel_state as ps
    from vllm.config import set_current_vllm_config

    init = f"file://{store_dir / 'gloo-store'}"
    # Without the config in scope, so that multi-node and data-parallel
    # settings cannot redirect the one-process world to a real rendezvous.
    ps.init_distributed_environment(
        world_size=1, rank=0, distributed_init_method=init, local_rank=0, backend="gloo"
    )
    pc = config.parallel_config
    dp_size = getattr(pc, "data_parallel_size", 1)
    try:
        # The one-process world holds one rank of one engine: the groups are
        # made for DP 1 and resized below.
        if dp_size and dp_size > 1:
            pc.data_parallel_size = 1
        with set_current_vllm_config(config):
            ps.ensure_model_parallel_initialized(1, 1)
    finally:
        if dp_size and dp_size > 1:
            pc.data_parallel_size = dp_size
    # Data parallel: one engine (TP x PP ranks) per DP rank; the DP group
    # links the same (PP, TP) position of every engine, and the EP group
    # spans the TP ranks of every engine (vLLM's FusedMoE shards experts
    # over DP x TP).
    dp = max(int(getattr(config.parallel_config, "data_parallel_size", 1) or 1), 1)
    engine = tp * pp
    base = dp_rank * engine
    global_rank = base + pp_rank * tp + tp_rank

    def overwrite(group, ranks: list[int]) -> None:
        if group is None:
            return
        group.ranks = ranks
        group.world_size = len(ranks)
        group.rank = global_rank
        group.rank_in_group = ranks.index(global_rank)
        group.local_rank = global_rank % GPUS_PER_NODE

    tp_ranks = [base + pp_rank * tp + i for i in range(tp)]
    overwrite(getattr(ps, "_TP", None), tp_ranks)
    overwrite(getattr(ps, "_PP", None), [base + s * tp + tp_rank for s in range(pp)])
    overwrite(getattr(ps, "_EP", None), [d * engine + pp_rank * tp + i for d in range(dp) for i in range(tp)])
    if dp > 1:
        overwrite(getattr(ps, "_DP", None), [d * engine + pp_rank * tp + tp_rank for d in range(dp)])
        ep = getattr(ps, "_EP", None)
        if ep is not None and getattr(ep, "device_communicator", None) is None:
            # The gloo world has no device communicator; with DP > 1 the MoE
            # layers' dispatch/combine setup reads the EP all-to-all manager's
            # sizes (all2all_utils.maybe_make_prepare_finalize) and allocates
            # nothing that stays with the model.
            manager = types.SimpleNamespace(
                world_size=ep.world_size,
                rank=ep.rank_in_group,
                dp_world_size=dp,
                get_handle=lambda *a, **k: None,
            )
            ep.device_communicator = types.SimpleNamespace(all2all_manager=manager)
    overwrite(getattr(ps, "_WORLD", None), list(range(base, base + engine)))
    assert dist.is_initialized()


def count_bytes(model: Any) -> dict[str, Any]:
    """Bytes of every tensor reachable from the model, each storage once."""
    import torch

    seen_storage: set[tuple] = set()
    seen_obj: set[int] = set()
    by_dtype: dict[str, int] = {}
    params = buffers = 0
    tensors = 0

    def add(t: torch.Tensor) -> None:
        nonlocal tensors
        try:
            st = t.untyped_storage()
            key = (st.data_ptr(), st.nbytes(), id(st)) if not t.is_meta else None
        except Exception:  # noqa: BLE001
            st, key = None, None
        if t.is_meta:
            # Meta storages have no address; views share the storage object
            # only through _base, so count a view through its base.
            base = t._base if t._base is not None else t
            key = ("meta", id(base))
            nbytes = base.untyped_storage().nbytes() if base is not t else t.untyped_storage().nbytes()
        else:
            nbytes = st.nbytes() if st is not None else t.numel() * t.element_size()
        if key in seen_storage:
            return
        seen_storage.add(key)
        tensors += 1
        name = str(t.dtype).removeprefix("torch.")
        by_dtype[name] = by_dtype.get(name, 0) + int(nbytes)

    def children(obj: Any) -> list[Any]:
        if isinstance(obj, torch.nn.Module):
            out = [v for v in list(obj._parameters.values()) + list(obj._buffers.values()) if v is not None]
            out += [v for k, v in vars(obj).items() if k not in ("_parameters", "_buffers", "_modules")]
            return out
        if isinstance(obj, (list, tuple, set, frozenset)):
            return list(obj)
        if isinstance(obj, dict):
            return list(obj.values())
        if isinstance(obj, (str, bytes, int, float, bool, type, types.ModuleType, types.FunctionType)):
            return []
        d = getattr(obj, "__dict__", None)
        if isinstance(d, dict) and not isinstance(obj, type):
            return list(d.values())
        if dataclasses.is_dataclass(obj):
            return [getattr(obj, f.name, None) for f in dataclasses.fields(obj)]
        slots = getattr(type(obj), "__slots__", ())
        return [getattr(obj, n, None) for n in ([slots] if isinstance(slots, str) else slots)]

    def walk(root: Any) -> None:
        # Breadth first, so that every object is reached by its shortest path
        # and the depth limit (against cycles through configs) cuts nothing
        # that a shorter path reaches.
        frontier = list(root.modules())  # every module starts at depth 0
        for _depth in range(12):
            nxt = []
            for obj in frontier:
                if id(obj) in seen_obj:
                    continue
                seen_obj.add(id(obj))
                if isinstance(obj, torch.Tensor):
                    add(obj)
                    continue
                nxt.extend(children(obj))
            frontier = nxt
            if not frontier:
                break

    # Parameters and buffers first, so their names decide the split.
    for p in model.parameters():
        add(p)
    params = sum(by_dtype.values())
    for b in model.buffers():
        add(b)
    buffers = sum(by_dtype.values()) - params
    walk(model)
    total = sum(by_dtype.values())
    return {
        "total": total,
        "parameters": params,
        "buffers": buffers,
        "other_tensors": total - params - buffers,
        "by_dtype": dict(sorted(by_dtype.items())),
        "tensors": tensors,
    }


def backend_name(layer: Any) -> str | None:
    for attr in ("get_attn_backend",):
        fn = getattr(layer, attr, None)
        if callable(fn):
            with contextlib.suppress(Exception):
                b = fn()
                return b.get_name() if hasattr(b, "get_name") else getattr(b, "__name__", repr(b))
    b = getattr(layer, "attn_backend", None)
    if b is not None:
        return b.get_name() if hasattr(b, "get_name") else getattr(b, "__name__", repr(b))
    return None


class _RunnerView(types.SimpleNamespace):
    """Stands for the model runner in its get_kv_cache_spec: the attributes
    the runner's __init__ copies from the config are looked up there
    (vllm_config first, then model_config) and listed in ``derived``."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        for owner in ("vllm_config", "model_config"):
            src = self.__dict__.get(owner)
            if src is not None and hasattr(src, name):
                self.__dict__.setdefault("derived", []).append(f"{owner}.{name}")
                return getattr(src, name)
        raise AttributeError(f"model runner stand-in has no attribute {name!r}")


def collect_specs(vllm_config: Any) -> dict[str, Any]:
    """The KV cache specs exactly as the release's model runner collects them."""
    ns = _RunnerView(
        vllm_config=vllm_config,
        model_config=vllm_config.model_config,
        cache_config=vllm_config.cache_config,
        parallel_config=vllm_config.parallel_config,
        scheduler_config=vllm_config.scheduler_config,
        compilation_config=vllm_config.compilation_config,
        speculative_config=vllm_config.speculative_config,
        shared_kv_cache_layers={},
        runner_only_attn_layers=set(),
        kv_sharing_fast_prefill_eligible_layers=set(),
        speculator=None,
        dcp_size=1,
        attn_groups=[],
        dcp_world_size=1,
    )
    use_v2 = bool(_get(vllm_config, "use_v2_model_runner", False))
    if use_v2:
        from vllm.v1.worker.gpu.model_runner import GPUModelRunner as Runner

        runner = "vllm.v1.worker.gpu.model_runner.GPUModelRunner"
    else:
        from vllm.v1.worker.gpu_model_runner import GPUModelRunner as Runner

        runner = "vllm.v1.worker.gpu_model_runner.GPUModelRunner"
    # Older V1 runners read two values their __init__ derives from the config.
    mc, cc = vllm_config.model_config, vllm_config.cache_config
    ns.dtype = mc.dtype
    ns.attention_chunk_size = getattr(mc, "attention_chunk_size", None)
    table = getattr(sys.modules[Runner.__module__], "STR_DTYPE_TO_TORCH_DTYPE", None)
    if cc.cache_dtype == "auto" or table is None:
        ns.kv_cache_dtype = mc.dtype
    else:
        ns.kv_cache_dtype = table.get(cc.cache_dtype, mc.dtype)
    specs = Runner.get_kv_cache_spec(ns)
    return {
        "runner": runner,
        "specs": specs,
        "shared": dict(ns.shared_kv_cache_layers),
        "derived": ns.__dict__.get("derived", []),
    }


def build_stage(
    vllm_config: Any, case: dict[str, Any], pp_rank: int, standins: Standins, store_dir: Path
) -> dict[str, Any]:
    """One worker: distributed init, model on meta, post-load, block size, specs."""
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader import get_model_loader
    from vllm.platforms import current_platform

    pc = vllm_config.parallel_config
    tp, pp = pc.tensor_parallel_size, pc.pipeline_parallel_size
    tp_rank = int(case.get("tp_rank", 0))
    dp_rank = int(case.get("dp_rank", 0))
    out: dict[str, Any] = {"pp_rank": pp_rank, "tp_rank": tp_rank}
    if dp_rank:
        out["dp_rank"] = dp_rank
    t0 = time.time()
    _parallel_world(vllm_config, tp, pp, tp_rank, pp_rank, store_dir, dp_rank)
    load_config = vllm_config.load_config
    if hasattr(load_config, "device"):
        load_config.device = "meta"
    else:
        vllm_config.device_config.device = torch.device("meta")
    with set_current_vllm_config(vllm_config), _meta_mode(standins), torch.inference_mode():
        loader = get_model_loader(load_config)
        model = loader.load_model(vllm_config=vllm_config, model_config=vllm_config.model_config)
    out["seconds_build"] = round(time.time() - t0, 2)
    out["model_class"] = type(model).__name__
    with contextlib.suppress(Exception):
        import vllm.distributed.parallel_state as ps

        pp_group = ps.get_pp_group()
        out["pp_group"] = {"world_size": pp_group.world_size, "rank_in_group": pp_group.rank_in_group}
    # Stage layer range, as make_layers computed it.
    with contextlib.suppress(Exception):
        from vllm.distributed.utils import get_pp_indices

        n = vllm_config.model_config.get_total_num_hidden_layers()
        start, end = get_pp_indices(n, pp_rank, pp)
        out["layers"] = [start, end]
    out["bytes"] = count_bytes(model)
    # Look on the class: the platform answers unknown attributes with None.
    if callable(getattr(type(current_platform), "update_block_size_for_backend", None)):
        with set_current_vllm_config(vllm_config):
            current_platform.update_block_size_for_backend(vllm_config)
        out["update_block_size_for_backend"] = True
    with set_current_vllm_config(vllm_config):
        got = collect_specs(vllm_config)
    with contextlib.suppress(ImportError, AttributeError):
        from vllm.v1.worker.worker_base import WorkerBase

        if hasattr(WorkerBase, "get_supported_kv_cache_layouts"):
            with set_current_vllm_config(vllm_config):
                out["kv_cache_layouts"] = WorkerBase.get_supported_kv_cache_layouts(
                    types.SimpleNamespace(vllm_config=vllm_config)
                )
    out["runner"] = got["runner"]
    if got["derived"]:
        out["runner_attributes_from_config"] = sorted(set(got["derived"]))
    out["specs"] = got["specs"]
    out["kv_sharing"] = got["shared"]
    layers = vllm_config.compilation_config.static_forward_context
    out["backends"] = {name: b for name, layer in layers.items() if (b := backend_name(layer)) is not None}
    out["cache_after_load"] = {
        k: to_json(_get(vllm_config, k))
        for k in (
            "cache_config.block_size",
            "cache_config.mamba_block_size",
            "cache_config.mamba_page_size_padded",
            "cache_config.mamba_cache_mode",
            "cache_config.enable_prefix_caching",
        )
        if _get(vllm_config, k) != "<absent>"
    }
    return out


# --------------------------------------------------------------------------
# planner
# --------------------------------------------------------------------------
class _Executor:
    """What the engine core asks its executor for, answered from the stages."""

    def __init__(self, specs: list[dict[str, Any]], memory: list[int], layouts: list[Any]) -> None:
        self.specs = specs
        self.memory = memory
        self.layouts = layouts
        self.configs: list[Any] | None = None
        self.calls: list[str] = []

    def get_kv_cache_specs(self) -> list[dict[str, Any]]:
        return self.specs

    def determine_available_memory(self) -> list[int]:
        return list(self.memory)

    def get_supported_kv_cache_layouts(self) -> list[Any]:
        return self.layouts

    def initialize_from_config(self, configs: list[Any]) -> None:
        self.configs = configs

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args, **kwargs):
            self.calls.append(name)
            return None

        return record


def run_planner(
    vllm_config: Any, specs: list[dict[str, Any]], memory: list[int], layouts: list[Any]
) -> dict[str, Any]:
    """The release's own EngineCore._initialize_kv_caches, on the collected specs.

    The executor is replaced by an object that hands over the stages' specs,
    the given available memory per worker and the layouts the workers'
    backends support, and records the per-worker KV cache configs it is
    asked to initialise.
    """
    from vllm.v1.engine.core import EngineCore

    utils = importlib.import_module("vllm.v1.core.kv_cache_utils")
    try:
        planning = importlib.import_module("vllm.v1.core.kv_cache_planning")
    except ImportError:
        planning = None
    executor = _Executor(specs, memory, layouts)
    core = types.SimpleNamespace(
        model_executor=executor,
        vllm_config=vllm_config,
        available_gpu_memory_for_kv_cache=-1,
        collective_rpc=executor.collective_rpc,
    )
    out: dict[str, Any] = {"available_memory": list(memory)}
    returned = EngineCore._initialize_kv_caches(core, vllm_config)
    sched = returned[-1] if isinstance(returned, tuple) else returned
    out["entry"] = "EngineCore._initialize_kv_caches"
    out["executor_calls"] = sorted(set(executor.calls))
    out["max_model_len_after"] = vllm_config.model_config.max_model_len
    out["workers"] = [kv_config_json(c) for c in executor.configs or []]
    out["scheduler"] = {
        "num_blocks": sched.num_blocks,
        # Releases from 0.28 set the config's block size from the groups here;
        # older ones leave the value config creation resolved.
        "cache_config.block_size": vllm_config.cache_config.block_size,
        "group_block_sizes": [g.kv_cache_spec.block_size for g in sched.kv_cache_groups],
    }
    for k in ("hash_block_size", "cache_hit_alignment_tokens"):
        if hasattr(sched, k):
            out["scheduler"][k] = to_json(getattr(sched, k))
    for k in ("kv_cache_layout",):
        v = _get(vllm_config.cache_config, k)
        if v != "<absent>":
            out[k] = to_json(v)
    cap: dict[str, Any] = {}
    if sched.kv_cache_groups:
        conc = getattr(utils, "get_max_concurrency_for_kv_cache_config", None)
        if conc is None and planning is not None:
            conc = getattr(planning, "get_max_concurrency_for_kv_cache_config", None)
        if conc is not None:
            with contextlib.suppress(Exception):
                cap["max_concurrency"] = float(conc(vllm_config, sched))
        capf = getattr(utils, "get_kv_cache_capacity", None)
        if capf is not None:
            with contextlib.suppress(Exception):
                tokens, value = capf(vllm_config, sched)
                cap["num_tokens"] = int(tokens)
                cap["max_concurrency_from_capacity"] = float(value)
        for k in ("kv_cache_size_tokens", "kv_cache_max_concurrency"):
            v = _get(vllm_config.cache_config, k)
            if v not in ("<absent>", None):
                cap[k] = to_json(v)
    out["capacity"] = cap
    return out


def kv_config_json(cfg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"num_blocks": cfg.num_blocks}
    out["kv_cache_tensors"] = [
        {f.name: to_json(getattr(t, f.name)) for f in dataclasses.fields(t)} for t in cfg.kv_cache_tensors
    ]
    out["kv_cache_groups"] = [
        {
            "layer_names": list(g.layer_names),
            "spec": spec_json(g.kv_cache_spec),
            **{
                f.name: to_json(getattr(g, f.name))
                for f in dataclasses.fields(g)
                if f.name not in ("layer_names", "kv_cache_spec")
            },
        }
        for g in cfg.kv_cache_groups
    ]
    for f in dataclasses.fields(cfg):
        if f.name not in ("num_blocks", "kv_cache_tensors", "kv_cache_groups"):
            out[f.name] = to_json(getattr(cfg, f.name))
    return out


def _spec_struct(spec: Any) -> dict[str, Any]:
    """A spec as JSON, sub-specs of UniformTypeKVCacheSpecs included."""
    d = spec_json(spec)
    inner = getattr(spec, "kv_cache_specs", None)
    if isinstance(inner, dict):
        d["kv_cache_specs"] = {k: spec_json(v) for k, v in inner.items()}
    return d


# --------------------------------------------------------------------------
# one case
# --------------------------------------------------------------------------
def _fork_call(fn, timeout: float) -> tuple[Any, dict[str, Any]]:
    """Run fn() in a forked child; return (pickled result or exception dict, usage)."""
    r, w = os.pipe()
    t0 = time.time()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            try:
                res = ("ok", fn())
            except BaseException as exc:  # noqa: BLE001
                res = ("err", error_json(exc, getattr(exc, "_oracle_stage", "?")))
            try:
                payload = pickle.dumps(res)
            except Exception as exc:  # noqa: BLE001
                payload = pickle.dumps(("err", error_json(exc, "pickle")))
            with os.fdopen(w, "wb") as fh:
                fh.write(payload)
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    deadline = t0 + timeout
    timed_out = False
    with os.fdopen(r, "rb") as fh:
        while True:
            left = deadline - time.time()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([fh], [], [], min(left, 5))
            if ready:
                chunk = os.read(fh.fileno(), 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    info = {"seconds": round(time.time() - t0, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}
    if timed_out:
        return ("err", {"stage": "timeout", "type": "Timeout", "message": f"killed after {timeout} s"}), info
    if not chunks:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return (
            "err",
            {
                "stage": "crash",
                "type": "Crash",
                "message": f"child ended without a result (status {status}, signal {sig})",
            },
        ), info
    return pickle.loads(b"".join(chunks)), info


class _Stage(Exception):
    pass


def _tag(stage: str):
    @contextlib.contextmanager
    def cm():
        try:
            yield
        except BaseException as exc:
            if not hasattr(exc, "_oracle_stage"):
                with contextlib.suppress(Exception):
                    exc._oracle_stage = stage  # type: ignore[attr-defined]
            raise

    return cm()


def run_case(case: dict[str, Any], standins: Standins, timeout: float) -> dict[str, Any]:
    """Runs inside the case process."""
    handler = _install_logging()
    import vllm.logger as vlog

    for name in dir(vlog):
        fn = getattr(vlog, name)
        if name.startswith("_print_") and hasattr(fn, "cache_clear"):
            fn.cache_clear()
    result: dict[str, Any] = {"status": "ok"}
    store_dir = Path(tempfile.mkdtemp(prefix="oracle-", dir=os.environ.get("ORACLE_SCRATCH")))
    try:
        with _tag("config"):
            vllm_config = create_config(case)
        result["config"] = config_values(vllm_config)
        pc = vllm_config.parallel_config
        tp, pp = pc.tensor_parallel_size, pc.pipeline_parallel_size
        backend = _get(pc, "distributed_executor_backend", None)
        in_process = tp * pp == 1 and backend in ("uni", None, "<absent>")
        result["executor"] = "in-process (uni)" if in_process else f"one process per rank ({backend})"
        stages: list[dict[str, Any]] = []
        if in_process:
            with _tag("build"):
                stages.append(build_stage(vllm_config, case, 0, standins, store_dir))
        else:
            for rank in range(pp):

                def stage_fn(rank=rank):
                    with _tag("build"):
                        return build_stage(vllm_config, case, rank, standins, store_dir / f"pp{rank}")

                (store_dir / f"pp{rank}").mkdir(exist_ok=True)
                (kind, payload), info = _fork_call(stage_fn, timeout)
                if kind != "ok":
                    payload["pp_rank"] = rank
                    raise _Failure(payload)
                payload["peak_rss_mib"] = info["peak_rss_mib"]
                stages.append(payload)
        result["stages"] = stages
        memory = case.get("memory_per_worker_bytes")
        if memory is not None:
            specs = [s["specs"] for s in stages]
            mark = len(handler.records)
            try:
                with _tag("planner"):
                    result["planner"] = run_planner(
                        vllm_config,
                        specs,
                        [int(memory)] * len(specs),
                        [s.get("kv_cache_layouts") for s in stages],
                    )
            except Exception as exc:  # noqa: BLE001 - vLLM's refusal is the answer
                result["planner"] = {"error": error_json(exc, "planner")}
                result["status"] = "planner_error"
            # Every INFO+ line vLLM printed while planning.
            result["planner"]["log"] = [
                f"{lvl} {where}: {msg[:500]}" for lvl, where, msg in handler.records[mark:]
            ]
    except _Failure as f:
        result["status"] = f"{f.payload.get('stage', '?')}_error"
        result["error"] = f.payload
    except Exception as exc:  # noqa: BLE001
        err = error_json(exc, getattr(exc, "_oracle_stage", "?"))
        result["status"] = f"{err['stage']}_error"
        result["error"] = err
    result["log"] = [f"{lvl} {msg}" for lvl, _, msg in handler.records if CAPACITY_LINE_RE.search(msg)]
    result["warnings"] = sorted(
        {f"{where}: {msg[:300]}" for lvl, where, msg in handler.records if lvl in ("WARNING", "ERROR")}
    )[:40]
    result["standins_used"] = dict(sorted(standins.hits.items()))
    if standins.meta_reads:
        result["meta_value_reads"] = dict(sorted(standins.meta_reads.items()))
    return result


class _Failure(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("message"))
        self.payload = payload


# --------------------------------------------------------------------------
# JSON-safe case result (specs de-duplicated)
# --------------------------------------------------------------------------
def finish(result: dict[str, Any]) -> dict[str, Any]:
    """Specs -> JSON; called in the case process before pickling upward."""
    for st in result.get("stages", []):
        specs = st.pop("specs")
        st["specs"] = {name: _spec_struct(spec) for name, spec in specs.items()}
    return result


# --------------------------------------------------------------------------
# group and top level
# --------------------------------------------------------------------------
def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in ("vllm", "torch", "triton", "transformers", "huggingface_hub", "compressed-tensors", "numpy"):
        with contextlib.suppress(Exception):
            out[dist] = md.version(dist)
    return out


def run_group(capability: str, cases: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    scratch = Path(os.environ.setdefault("ORACLE_SCRATCH", tempfile.mkdtemp(prefix="vllm-oracle-")))
    standins = Standins(capability)
    t0 = time.time()
    standins.install(scratch)
    _install_logging()
    # Import what every case needs once, so each case process starts warm.
    import vllm.engine.arg_utils  # noqa: F401
    import vllm.model_executor.model_loader  # noqa: F401
    import vllm.v1.core.kv_cache_utils  # noqa: F401

    with contextlib.suppress(Exception):
        import vllm.v1.worker.gpu_model_runner  # noqa: F401
    with contextlib.suppress(Exception):
        import vllm.v1.worker.gpu.model_runner  # noqa: F401
    standins.sweep()
    registry = importlib.import_module("vllm.model_executor.models.registry")
    if hasattr(registry, "_run_in_subprocess"):
        registry._run_in_subprocess = lambda fn: fn()
        standins.applied.append("model-class inspection runs in-process (registry._run_in_subprocess)")
    dummy = importlib.import_module("vllm.model_executor.model_loader.dummy_loader")
    if hasattr(dummy, "materialize_meta_tensor"):
        # The dummy loader of these releases materialises every meta tensor
        # (meant for online quantization); on the meta build it stays meta.
        dummy.materialize_meta_tensor = lambda t: t
        standins.applied.append("dummy loader: materialize_meta_tensor keeps meta tensors on meta")
    wu = importlib.import_module("vllm.model_executor.model_loader.weight_utils")
    skipped = []
    original_single = getattr(wu, "initialize_single_dummy_weight", None)
    if original_single is not None:

        def init_unless_meta(param, *a, **k):
            # Random values mean nothing on meta (and torch has no meta generator).
            if getattr(param, "is_meta", False):
                return None
            return original_single(param, *a, **k)

        for mod in (wu, dummy):
            if getattr(mod, "initialize_single_dummy_weight", None) is original_single:
                mod.initialize_single_dummy_weight = init_unless_meta
        skipped.append("initialize_single_dummy_weight")
    original_all = getattr(wu, "initialize_dummy_weights", None)
    if original_all is not None and original_single is None:

        def init_all_unless_meta(model, *a, **k):
            if all(t.is_meta for t in model.state_dict().values()):
                return None
            return original_all(model, *a, **k)

        for mod in (wu, dummy):
            if getattr(mod, "initialize_dummy_weights", None) is original_all:
                mod.initialize_dummy_weights = init_all_unless_meta
        skipped.append("initialize_dummy_weights")
    if skipped:
        standins.applied.append(
            "dummy weights: random initialisation skipped for meta tensors (" + ", ".join(skipped) + ")"
        )
    import_seconds = round(time.time() - t0, 2)
    results = {}
    for case in cases:

        def case_fn(case=case):
            return finish(run_case(case, standins, timeout))

        (kind, payload), info = _fork_call(case_fn, timeout)
        if kind != "ok":
            payload = {"status": f"{payload.get('stage', '?')}_error", "error": payload}
        payload["seconds"] = info["seconds"]
        payload["peak_rss_mib"] = max(
            [info["peak_rss_mib"]] + [s.get("peak_rss_mib", 0) for s in payload.get("stages", [])]
        )
        results[case["id"]] = payload
        print(
            json.dumps(
                {
                    "id": case["id"],
                    "status": payload["status"],
                    "seconds": info["seconds"],
                    "peak_rss_mib": payload["peak_rss_mib"],
                }
            ),
            file=sys.stderr,
            flush=True,
        )
    return {
        "capability": capability,
        "gpu": {"name": standins.name, "total_memory": standins.total_memory, "sms": standins.sms},
        "import_seconds": import_seconds,
        "standins": standins.applied,
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases")
    ap.add_argument("output")
    ap.add_argument("--only", default="")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args(argv)
    cases = json.loads(Path(a.cases).read_text())["cases"]
    only = {s for s in a.only.split(",") if s}
    if only:
        cases = [c for c in cases if c["id"] in only]
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in cases:
        cap = str(c.get("capability", DEFAULT_CAPABILITY))
        if cap not in GPUS:
            raise SystemExit(f"case {c['id']}: unknown capability {cap} (known: {', '.join(GPUS)})")
        groups.setdefault(cap, []).append(c)
    t0 = time.time()
    out: dict[str, Any] = {
        "environment": {"python": sys.version.split()[0], "versions": versions()},
        "groups": {},
        "results": {},
    }
    for cap, group_cases in groups.items():
        (kind, payload), info = _fork_call(
            lambda cap=cap, group_cases=group_cases: run_group(cap, group_cases, a.timeout),
            a.timeout * (len(group_cases) + 1),
        )
        if kind != "ok":
            for c in group_cases:
                out["results"][c["id"]] = {"status": "harness_error", "error": payload}
            continue
        out["results"].update(payload.pop("results"))
        payload["seconds"] = info["seconds"]
        out["groups"][cap] = payload
    out["seconds"] = round(time.time() - t0, 1)
    Path(a.output).write_text(json.dumps(out, indent=1) + "\n")
    statuses: dict[str, int] = {}
    for r in out["results"].values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    print(json.dumps({"cases": len(out["results"]), "statuses": statuses, "seconds": out["seconds"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
