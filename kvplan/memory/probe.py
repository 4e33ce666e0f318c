"""Reading the local GPUs: torch.cuda first, NVML (nvidia-ml-py) when torch is absent.

This is the only module that imports torch, and only when called.
"""

from __future__ import annotations

from kvplan.errors import NoDeviceError
from kvplan.records import record


@record(frozen=True)
class Device:
    """One visible CUDA device: total and free memory in bytes as the driver reports them."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int
    via: str


def _torch_devices() -> list[Device] | None:
    try:
        import torch
    except ImportError:
        return None
    try:
        if not torch.cuda.is_available():
            raise NoDeviceError("no CUDA device is visible to torch (torch.cuda.is_available() is False)")
        out = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append(Device(i, torch.cuda.get_device_name(i), int(total), int(free), "torch.cuda"))
        return out
    except NoDeviceError:
        raise
    except Exception as exc:  # driver errors surface as RuntimeError and friends
        raise NoDeviceError(f"the CUDA driver failed: {exc}".splitlines()[0]) from None


def _nvml_devices() -> list[Device] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            info = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            out.append(
                Device(
                    i,
                    name.decode() if isinstance(name, bytes) else str(name),
                    int(info.total),
                    int(info.free),
                    "nvml",
                )
            )
        return out
    except Exception as exc:
        raise NoDeviceError(f"NVML failed: {exc}".splitlines()[0]) from None


def devices() -> list[Device]:
    """Every visible device; raises ``NoDeviceError`` (exit 3) when there is none."""
    found = _torch_devices()
    if found is None:
        found = _nvml_devices()
        if found is None:
            raise NoDeviceError(
                "cannot probe GPUs: neither torch nor nvidia-ml-py is installed "
                "(pip install torch==2.13.0 or nvidia-ml-py)"
            )
    if not found:
        raise NoDeviceError("no CUDA device found")
    return found


def first_device() -> Device:
    """Device 0, which ``--probe`` plans for."""
    return devices()[0]
