"""`kvplan probe` and `plan --probe` with fake torch / NVML modules (no GPU needed)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

GiB = 1 << 30


def _fake_torch(devices: list[tuple[str, int, int]] | None, *, fail: bool = False) -> types.ModuleType:
    torch = types.ModuleType("torch")

    def mem_get_info(i: int) -> tuple[int, int]:
        if fail:
            raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version\nmore")
        return devices[i][2], devices[i][1]  # type: ignore[index]

    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: bool(devices) or fail,
        device_count=lambda: len(devices or []) or (1 if fail else 0),
        mem_get_info=mem_get_info,
        get_device_name=lambda i: devices[i][0],  # type: ignore[index]
    )
    return torch


@pytest.fixture
def no_gpu_libs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)


TWO = [("NVIDIA H100 80GB HBM3", 85029027840, 80 * GiB), ("NVIDIA H100 80GB HBM3", 85029027840, 10 * GiB)]


def test_probe_without_torch_or_nvml_exits_3(kvplan: Any, no_gpu_libs: None) -> None:
    out = kvplan("probe")
    assert out.code == 3
    assert "neither torch nor nvidia-ml-py" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_probe_cuda_unavailable_exits_3(kvplan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch([]))
    out = kvplan("probe")
    assert out.code == 3 and "is_available() is False" in out.stderr


def test_probe_driver_error_exits_3_with_one_line(kvplan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(None, fail=True))
    out = kvplan("probe")
    assert out.code == 3 and "CUDA driver failed" in out.stderr
    assert "more" not in out.stderr


def test_probe_two_devices_json(kvplan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(TWO))
    out = kvplan("probe", "--format", "json")
    assert out.code == 0
    rows = out.json()
    assert [r["index"] for r in rows] == [0, 1]
    assert rows[1]["used_bytes"] == 85029027840 - 10 * GiB
    assert rows[0]["via"] == "torch.cuda"


def test_probe_two_devices_table(kvplan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(TWO))
    out = kvplan("probe")
    assert out.code == 0 and out.stdout.count("H100") == 2 and out.stdout.count("79.19 GiB") == 2


def test_probe_nvml_fallback(kvplan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    nvml = types.ModuleType("pynvml")
    nvml.nvmlInit = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: 1  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=24 * GiB, free=20 * GiB)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetName = lambda h: b"NVIDIA L4"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    out = kvplan("probe", "--format", "json")
    assert out.code == 0 and out.json()[0]["name"] == "NVIDIA L4" and out.json()[0]["via"] == "nvml"


def test_plan_probe_warns_when_free_below_requested(kvplan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    busy = [("NVIDIA H100 80GB HBM3", 85029027840, 60 * GiB)]
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(busy))
    out = kvplan("plan", "llama-3.1-8b", "--probe", "--vllm-version", "0.15", "--format", "json")
    assert out.code == 0
    assert out.json()["memory"]["total_source"] == "probed: NVIDIA H100 80GB HBM3"
    assert "vLLM would refuse to start" in out.stderr and "71.27 GiB" in out.stderr


def test_plan_probe_quiet_when_free(kvplan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch([TWO[0]]))
    out = kvplan("plan", "llama-3.1-8b", "--probe", "--format", "json")
    assert out.code == 0 and "warning" not in out.stderr


def test_plan_probe_without_device_exits_3(kvplan: Any, no_gpu_libs: None) -> None:
    assert kvplan("plan", "llama-3.1-8b", "--probe").code == 3


def test_plan_probe_reads_the_device_once(kvplan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batch defaults, the budget and the free-memory warning share one reading.
    torch = _fake_torch([TWO[0]])
    calls: list[int] = []
    read = torch.cuda.mem_get_info  # type: ignore[attr-defined]
    torch.cuda.mem_get_info = lambda i: calls.append(i) or read(i)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert kvplan("plan", "llama-3.1-8b", "--probe", "--format", "json").code == 0
    assert calls == [0]
