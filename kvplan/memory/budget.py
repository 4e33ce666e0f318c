"""The KV cache memory of each PP stage: given exactly, or estimated from the GPU.

With ``--kv-cache-memory`` the figure is vLLM's own (``kv_cache_memory_bytes``
or the "Available KV cache memory" log line) and nothing is estimated.
Otherwise: total x gpu_memory_utilization - weights - activation peak -
non-torch memory - CUDA graph memory, per stage, every term labelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvplan.errors import InputError
from kvplan.inputs.serving import Serving
from kvplan.model.layers import ModelDescription
from kvplan.releases import Release
from kvplan.vllm.layout import Layout

GiB = 1 << 30


@dataclass(eq=False)
class Term:
    """One line of a stage's memory budget, in bytes (negative: subtracted)."""

    name: str
    bytes: int
    estimated: bool
    source: str


@dataclass(eq=False)
class StageBudget:
    """How one stage's KV cache memory is made up."""

    pp_rank: int
    terms: tuple[Term, ...]
    available: int


@dataclass(eq=False)
class MemoryBudget:
    """Every stage's budget; ``exact`` when the user gave the KV cache memory."""

    stages: tuple[StageBudget, ...]
    exact: bool
    total_bytes: int | None
    total_source: str | None
    gpu_memory_utilization: float
    probed: Any = None  # the memory.probe.Device read for --probe

    @property
    def available(self) -> tuple[int, ...]:
        """KV cache bytes per stage, as the planner takes them."""
        return tuple(s.available for s in self.stages)


@dataclass(eq=False)
class GpuTotal:
    """The GPU's total memory in bytes, where the figure came from, and the probed device."""

    bytes: int
    source: str
    probed: Any = None  # memory.probe.Device for --probe


def gpu_total(serving: Serving) -> GpuTotal | None:
    """The total memory ``--probe``, ``--gpu-memory`` or ``--gpu`` gives (read once per plan)."""
    if serving.probe:
        from kvplan.memory import probe

        device = probe.first_device()
        return GpuTotal(device.total_bytes, f"probed: {device.name}", device)
    if serving.gpu_memory is not None:
        return GpuTotal(serving.gpu_memory, "--gpu-memory")
    if serving.gpu is not None:
        from kvplan.inputs.presets import find_gpu

        gpu = find_gpu(serving.gpu)
        return GpuTotal(gpu.total_bytes, f"GPU preset {gpu.name}")
    return None


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
) -> MemoryBudget:
    """The KV cache memory of every stage (bytes), with the terms that make it up.

    ``directory``: where the checkpoint's ``*.safetensors`` may be; their
    headers make the weights term exact.  ``gpu``: the total memory, from
    ``gpu_total``; needed unless ``exact`` gives the KV cache memory.
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
            model,
            serving,
            release,
            layout,
            max_num_batched_tokens,
            max_num_seqs,
            directory,
            gpu.bytes,
            gpu.source,
            util,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"the config's sizes cannot be used for the memory estimate ({exc})",
            source=model.source,
            hint="give --kv-cache-memory instead",
        ) from None
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
    total: int,
    total_source: str,
    util: float,
) -> MemoryBudget:
    from kvplan.memory import weights

    usable = int(total * util)
    non_torch = weights.non_torch_bytes(serving)
    graphs = weights.cuda_graph_bytes(model, serving, release)
    stages_out = []
    for rank, (start, end) in enumerate(layout.ranges):
        last = rank == serving.pp - 1
        w = weights.stage_weight_bytes(model, serving, rank, start, end, directory)
        act = weights.activation_bytes(
            model, serving, release, max_num_batched_tokens, max_num_seqs, last=last
        )
        # --cpu-offload-gb: vLLM keeps up to that many GiB of this GPU's weights in CPU memory.
        offload = min(int(serving.cpu_offload_gb * GiB), w.bytes)
        terms = (
            Term("total", total, False, total_source),
            Term("usable (x gpu_memory_utilization)", usable, False, f"total x {util}"),
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
        available = usable - w.bytes + offload - act.bytes - non_torch.bytes - graphs.bytes
        stages_out.append(StageBudget(rank, terms, available))
    return MemoryBudget(tuple(stages_out), False, total, total_source, util)


def batch_defaults(gpu: GpuTotal | None, release: Release) -> tuple[int | None, int | None]:
    """``vllm serve``'s max_num_batched_tokens / max_num_seqs for the GPU, where known.

    (None, None) without a GPU memory figure (``--kv-cache-memory`` alone);
    see ``weights.serve_batch_defaults`` for the rule.
    """
    if gpu is None:
        return None, None
    from kvplan.memory import weights

    return weights.serve_batch_defaults(gpu.bytes, gpu.source, release)
