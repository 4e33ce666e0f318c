"""The KV cache memory of each PP stage: given exactly, or estimated from the GPU.

With ``--kv-cache-memory`` the figure is vLLM's own (``kv_cache_memory_bytes``
or the "Available KV cache memory" log line) and nothing is estimated.
Otherwise, as the selected release's ``Worker.determine_available_memory``
computes it: total x gpu_memory_utilization - weights - activation peak -
non-torch memory - CUDA graph memory, per stage, every term labelled with its
formula (``kvplan.memory.weights``, ``kvplan.memory.runtime``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from kvplan.errors import InputError
from kvplan.inputs.serving import Serving
from kvplan.model.layers import ModelDescription
from kvplan.records import record
from kvplan.releases import Release
from kvplan.vllm.layout import Layout

GiB = 1 << 30


@record(eq=False)
class Term:
    """One line of a stage's memory budget, in bytes (negative: subtracted)."""

    name: str
    bytes: int
    estimated: bool
    source: str


@record(eq=False)
class StageBudget:
    """How one stage's KV cache memory is made up."""

    pp_rank: int
    terms: tuple[Term, ...]
    available: int


@record(eq=False)
class MemoryBudget:
    """Every stage's budget; ``exact`` when the user gave the KV cache memory."""

    stages: tuple[StageBudget, ...]
    exact: bool
    total_bytes: int | None
    total_source: str | None
    gpu_memory_utilization: float
    probed: Any = None  # the memory.probe.Device read for --probe
    runner: str | None = None  # the model runner the estimate assumes (V1 / V2) and why
    notes: tuple[str, ...] = field(default=())

    @property
    def available(self) -> tuple[int, ...]:
        """KV cache bytes per stage, as the planner takes them."""
        return tuple(s.available for s in self.stages)

    @property
    def requested_bytes(self) -> int | None:
        """total x gpu_memory_utilization as vLLM rounds it (None when exact)."""
        for term in self.stages[0].terms if self.stages else ():
            if term.name.startswith("requested"):
                return term.bytes
        return None


@record(eq=False)
class GpuTotal:
    """The GPU's total memory in bytes, where the figure came from, and what else is known of it.

    ``name``: the GPU's name when known (vLLM's batch defaults test it for
    A100 and GB10); ``arch`` picks the quantization kernels; ``unified``: CPU
    and GPU share the memory (GB10, GH200), so vLLM reads free memory from the
    host's available RAM.
    """

    bytes: int
    source: str
    probed: Any = None  # memory.probe.Device for --probe
    name: str | None = None
    arch: str = "hopper"
    vendor: str = "nvidia"
    unified: bool = False
    note: str | None = None


def _preset_for_bytes(total: int) -> Any:
    from kvplan.inputs.presets import gpus

    return next((g for g in gpus() if g.total_bytes == total), None)


def _from_preset(gpu: Any, total: int, source: str, note: str | None = None) -> GpuTotal:
    return GpuTotal(
        total,
        source,
        name=gpu.name,
        arch=gpu.arch,
        vendor=gpu.vendor,
        unified=gpu.unified,
        note=note,
    )


def gpu_total(serving: Serving) -> GpuTotal | None:
    """The total memory ``--probe``, ``--gpu-memory`` or ``--gpu`` gives (read once per plan).

    A ``--gpu-memory`` equal to a preset's total is taken as that GPU (and
    said so); any other figure leaves the GPU's name unknown.
    """
    if serving.probe:
        from kvplan.inputs.presets import find_gpu
        from kvplan.memory import probe

        device = probe.first_device()
        try:
            preset = find_gpu(device.name)
        except InputError:
            preset = None
        arch = preset.arch if preset else "hopper"
        return GpuTotal(
            device.total_bytes,
            f"probed: {device.name}",
            device,
            name=device.name,
            arch=arch,
            unified=bool(preset and preset.unified),
        )
    if serving.gpu_memory is not None:
        preset = _preset_for_bytes(serving.gpu_memory)
        if preset is not None:
            note = (
                f"--gpu-memory {serving.gpu_memory} is the total of GPU preset {preset.name}: planned as one"
            )
            return _from_preset(preset, serving.gpu_memory, "--gpu-memory", note)
        note = (
            "--gpu-memory names no GPU: vLLM's batch defaults test the GPU's name (A100, GB10), "
            "so they assume neither; give --gpu to name it"
        )
        return GpuTotal(serving.gpu_memory, "--gpu-memory", note=note)
    if serving.gpu is not None:
        from kvplan.inputs.presets import find_gpu

        gpu = find_gpu(serving.gpu)
        return _from_preset(gpu, gpu.total_bytes, f"GPU preset {gpu.name}")
    return None


# A checkpoint name that says it is quantized.
_QUANTIZED_NAME = r"(?i)(?:^|[-_./])(awq|gptq|fp8|fp4|nvfp4|mxfp4|int4|int8|w4a16|w8a8|bnb|4bit|8bit)"


def _quantization_warning(model: ModelDescription, serving: Serving, label: str) -> str | None:
    if serving.quantization is not None or isinstance(model.config.get("quantization_config"), dict):
        return None
    m = re.search(_QUANTIZED_NAME, label)
    if not m:
        return None
    return (
        f"warning: the model's name says {m.group(1).upper()} but its config has no quantization_config: "
        "the weights are counted unquantized; give --quantization as vLLM is told (e.g. --quantization fp8)"
    )


def budget(
    model: ModelDescription,
    serving: Serving,
    release: Release,
    layout: Layout,
    exact: Sequence[int] | None,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    directory: Path | None = None,
    gpu: GpuTotal | None = None,
    label: str = "",
) -> MemoryBudget:
    """The KV cache memory of every stage (bytes), with the terms that make it up.

    ``directory``: where the checkpoint's ``*.safetensors`` may be; their
    headers make the weights term exact.  ``gpu``: the total memory, from
    ``gpu_total``; needed unless ``exact`` gives the KV cache memory.
    ``label``: the model's name, checked for a quantization the config lacks.
    """
    util = serving.gpu_memory_utilization or release.behaviour.gpu_memory_utilization
    if exact is not None:
        stages = tuple(
            StageBudget(i, (Term("kv_cache_memory", v, False, "--kv-cache-memory"),), v)
            for i, v in enumerate(exact)
        )
        return MemoryBudget(stages, True, None, None, util)
    if gpu is None:
        raise InputError(
            "no memory figure: give --kv-cache-memory, --gpu, --gpu-memory or --probe",
            field="kv_cache_memory",
            hint="e.g. --kv-cache-memory 20GiB (exact) or --gpu H100-80GB (estimated)",
        )
    try:
        estimated = _estimated(
            model, serving, release, layout, max_num_batched_tokens, max_num_seqs, directory, gpu, util
        )
    except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
        raise InputError(
            f"the config's sizes cannot be used for the memory estimate ({exc})",
            source=model.source,
            hint="give --kv-cache-memory instead",
        ) from None
    notes = list(estimated.notes)
    warning = _quantization_warning(model, serving, label)
    if warning:
        notes.append(warning)
    estimated.notes = tuple(notes)
    estimated.probed = gpu.probed
    return estimated


def _estimated(
    model: ModelDescription,
    serving: Serving,
    release: Release,
    layout: Layout,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    directory: Path | None,
    gpu: GpuTotal,
    util: float,
) -> MemoryBudget:
    from kvplan.memory import runtime, weights

    total = gpu.bytes
    requested, requested_how = runtime.requested_bytes(total, util, release)
    runner = runtime.model_runner(model, serving, release)
    non_torch = runtime.non_torch_bytes(serving, release)
    graphs = runtime.cuda_graph_bytes(serving, release, runner, gpu.vendor)
    dtype_bytes = weights.dtype_bytes(model, serving)
    stages_out = []
    oom: list[str] = []
    for rank, (start, end) in enumerate(layout.ranges):
        last = rank == serving.pp - 1
        w = weights.stage_weight_bytes(
            model,
            serving,
            rank,
            start,
            end,
            directory,
            arch=gpu.arch,
            release=release,
        )
        act = runtime.activation_bytes(
            model,
            serving,
            release,
            runner,
            max_num_batched_tokens,
            max_num_seqs,
            last=last,
            vendor=gpu.vendor,
            dtype_bytes=dtype_bytes,
        )
        # --cpu-offload-gb: vLLM keeps up to that many GiB of this GPU's weights in CPU memory.
        offload = min(int(serving.cpu_offload_gb * GiB), w.bytes)
        terms = (
            Term("total", total, False, gpu.source),
            Term("requested (x gpu_memory_utilization)", requested, False, requested_how),
            Term("weights", -w.bytes, w.estimated, w.source),
            *(
                (
                    Term(
                        "weights in CPU memory", offload, True, f"--cpu-offload-gb {serving.cpu_offload_gb:g}"
                    ),
                )
                if offload
                else ()
            ),
            Term("activation peak", -act.bytes, True, act.source),
            Term("non-torch memory", -non_torch.bytes, True, non_torch.source),
            Term("CUDA graphs", -graphs.bytes, graphs.estimated, graphs.source),
        )
        available = requested - w.bytes + offload - act.bytes - non_torch.bytes - graphs.bytes
        stages_out.append(StageBudget(rank, terms, available))
        if w.bytes > total:
            oom.append(f"stage {rank}: {w.bytes / GiB:.2f} GiB")
    notes = []
    if oom:
        notes.append(
            f"the weights alone exceed the GPU's {total / GiB:.2f} GiB ({'; '.join(oom)}): vLLM runs out of "
            "memory while loading the model (CUDA out of memory), before it sizes the KV cache"
        )
    if gpu.note:
        notes.append(gpu.note)
    if release.behaviour.memory_accounting == "consumed":
        notes.append(
            f"vLLM {release.version} subtracts the drop in free memory since start-up (weights, non-torch, "
            "allocator segments) and the transient activation peak: the same terms, measured together"
        )
    if gpu.unified:
        notes.append(
            "unified memory: vLLM reads free memory from the host's available RAM, so other processes on "
            "the host change the budget (not modelled)"
        )
    if model.config.get("vision_config") is not None:
        notes.append("multimodal: the encoder's profile run (dummy images) is not in the activation estimate")
    return MemoryBudget(
        tuple(stages_out),
        False,
        total,
        gpu.source,
        util,
        runner=f"{runner.name}: {runner.reason}",
        notes=tuple(notes),
    )


def batch_defaults(
    gpu: GpuTotal | None, release: Release, serving: Serving, max_model_len: int
) -> tuple[int | None, int | None, str | None]:
    """vLLM's max_num_batched_tokens / max_num_seqs for the GPU and usage context, and how.

    (None, None, None) without a GPU memory figure (``--kv-cache-memory``
    alone); see ``runtime.batch_defaults`` for the rule.
    """
    if gpu is None:
        return None, None, None
    from kvplan.memory import runtime

    got = runtime.batch_defaults(gpu.bytes, gpu.name, release, serving, max_model_len)
    return got.max_num_batched_tokens, got.max_num_seqs, got.source
