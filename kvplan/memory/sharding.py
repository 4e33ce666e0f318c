"""How one rank holds the routed MoE experts under tensor, data and expert parallelism."""

from __future__ import annotations

from kvplan.inputs.serving import Serving
from kvplan.records import record


@record(frozen=True)
class MoeShards:
    """How one rank holds the routed experts (vLLM's FusedMoEParallelConfig.make).

    The experts are spread over every rank of the TP x DP grid: without
    expert parallelism each expert's intermediate size is divided by
    ``tp`` = TP x DP; with it (``ep`` = TP x DP > 1) each rank holds whole
    experts, ``experts // ep`` of them, the first ``experts % ep`` ranks one
    more (determine_expert_map, fused_moe/expert_map_manager.py).
    ``ep_rank`` is the rank counted.
    """

    tp: int = 1
    ep: int = 1
    ep_rank: int = 0

    def local_experts(self, experts: int) -> int:
        """Routed experts on this rank."""
        if self.ep <= 1:
            return experts
        return experts // self.ep + (1 if self.ep_rank < experts % self.ep else 0)


def moe_shards(serving: Serving) -> MoeShards:
    """The routed-expert split for ``serving``: TP x DP ranks, whole experts with
    ``--enable-expert-parallel`` (rank 0, which holds the most)."""
    grid = serving.tp * serving.dp
    if serving.enable_expert_parallel and grid > 1:
        return MoeShards(tp=1, ep=grid)
    return MoeShards(tp=grid)
