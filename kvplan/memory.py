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

from kvplan.errors import InputError
from kvplan.layouts import Layout
from kvplan.model import ModelDescription
from kvplan.releases import Release
from kvplan.serving import Serving

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
class Budget:
    """Every stage's budget; ``exact`` when the user gave the KV cache memory."""

    stages: tuple[StageBudget, ...]
    exact: bool
    total_bytes: int | None
    total_source: str | None
    gpu_memory_utilization: float

    @property
    def available(self) -> tuple[int, ...]:
        """KV cache bytes per stage, as the planner takes them."""
        return tuple(s.available for s in self.stages)


def total_memory(serving: Serving) -> tuple[int, str, bool]:
    """(bytes, where from, measured?) for the GPU's total memory."""
    if serving.probe:
        from kvplan import gpu_probe

        device = gpu_probe.first_device()
        return device.total_bytes, f"probed: {device.name}", True
    if serving.gpu_memory is not None:
        return serving.gpu_memory, "--gpu-memory", False
    if serving.gpu is not None:
        from kvplan.presets import find_gpu

        gpu = find_gpu(serving.gpu)
        return gpu.total_bytes, f"GPU preset {gpu.name}", False
    raise InputError(
        "no memory figure: give --kv-cache-memory, --gpu, --gpu-memory or --probe",
        field="kv_cache_memory",
        hint="e.g. --kv-cache-memory 20GiB (exact) or --gpu H100-80GB (estimated)",
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
) -> Budget:
    """The KV cache memory of every stage (bytes), with the terms that make it up.

    ``directory``: where the checkpoint's ``*.safetensors`` may be; their
    headers make the weights term exact.
    """
    util = serving.gpu_memory_utilization or release.behaviour.gpu_memory_utilization
    if exact is not None:
        stages = tuple(
            StageBudget(i, (Term("kv_cache_memory", v, False, "--kv-cache-memory"),), v)
            for i, v in enumerate(exact)
        )
        return Budget(stages, True, None, None, util)
    total, total_source, _ = total_memory(serving)
    try:
        return _estimated(
            model,
            serving,
            release,
            layout,
            max_num_batched_tokens,
            max_num_seqs,
            directory,
            total,
            total_source,
            util,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"the config's sizes cannot be used for the memory estimate ({exc})",
            source=model.source,
            hint="give --kv-cache-memory instead",
        ) from None


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
) -> Budget:
    from kvplan import weights

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
        terms = (
            Term("total", total, False, total_source),
            Term("usable (x gpu_memory_utilization)", usable, False, f"total x {util}"),
            Term("weights", -w.bytes, w.estimated, w.source),
            Term("activation peak", -act.bytes, True, act.source),
            Term("non-torch memory", -non_torch.bytes, True, non_torch.source),
            Term("CUDA graphs", -graphs.bytes, graphs.estimated, graphs.source),
        )
        available = usable - w.bytes - act.bytes - non_torch.bytes - graphs.bytes
        stages_out.append(StageBudget(rank, terms, available))
    return Budget(tuple(stages_out), False, total, total_source, util)


def batch_defaults(serving: Serving, release: Release) -> tuple[int | None, int | None]:
    """``vllm serve``'s max_num_batched_tokens / max_num_seqs for the GPU, where known.

    (None, None) when no GPU memory figure is given (``--kv-cache-memory``
    alone); see ``weights.serve_batch_defaults`` for the rule.
    """
    if serving.kv_cache_memory is not None or not (serving.gpu or serving.gpu_memory or serving.probe):
        return None, None
    from kvplan import weights

    total, source, _ = total_memory(serving)
    return weights.serve_batch_defaults(total, source, release)
