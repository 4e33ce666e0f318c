"""A validated description of a model's decoder layers, independent of serving.

Each layer knows, for the whole model, what vLLM needs to build its KV cache
spec (heads, head size, window, latent width, state shapes) and how it shards
over tensor parallelism; ``kvplan.vllm.sharding`` turns it into the
per-TP-rank ``KVCacheSpec``.  Layers that hold no KV cache (MLP-only blocks)
are simply absent.
"""

from __future__ import annotations

from dataclasses import field
from math import prod
from typing import Any, ClassVar

from kvplan.dtypes import dtype_size
from kvplan.errors import InputError
from kvplan.records import record


def kv_heads_per_rank(total_kv_heads: int, tp: int, *, layer: str) -> int:
    """KV heads one TP rank holds, with vLLM's replication when TP > KV heads.

    vLLM's ``QKVParallelLinear`` splits KV heads evenly when there are at least
    as many as ranks, and otherwise replicates each head on ``tp / heads``
    ranks; both splits must be exact.
    """
    if total_kv_heads >= tp:
        if total_kv_heads % tp:
            raise InputError(
                f"{total_kv_heads} KV heads cannot be split evenly over tensor parallel size {tp}",
                field="tp",
                value=tp,
                hint=f"layer {layer}; choose a TP size that divides {total_kv_heads}",
            )
        return total_kv_heads // tp
    if tp % total_kv_heads:
        raise InputError(
            f"tensor parallel size {tp} is not a multiple of the {total_kv_heads} KV heads, "
            "so vLLM cannot replicate them",
            field="tp",
            value=tp,
            hint=f"layer {layer}",
        )
    return 1


@record(frozen=True, eq=False)
class Layer:
    """One KV-cache-holding layer of the whole model."""

    kind: ClassVar[str] = "abstract"
    name: str
    index: int  # decoder layer index, which decides the PP stage

    def check_tp(self, tp: int) -> None:
        """Raise ``InputError`` when this layer cannot be sharded over ``tp`` ranks."""

    def check_pp(self, pp: int) -> None:
        """Raise when the model this layer belongs to cannot run on ``pp`` pipeline stages."""

    @property
    def kv_sharing_target(self) -> str | None:
        """The layer whose KV cache this one reads (None: it keeps its own)."""
        return None


@record(frozen=True, eq=False)
class AttentionLayer(Layer):
    """Multi-head, grouped-query or multi-query attention."""

    kind: ClassVar[str] = "full"
    num_kv_heads: int = 0
    head_size: int = 0
    num_attention_heads: int | None = None
    head_size_v: int | None = None
    dtype: str | None = None
    block_size: int | None = None
    page_size_padded: int | None = None
    # False where the model asserts KV heads % TP == 0 instead of replicating them
    replicate_kv: bool = True

    def check_tp(self, tp: int) -> None:
        if not self.replicate_kv and self.num_kv_heads % tp:
            raise InputError(
                f"{self.num_kv_heads} KV heads are not divisible by tensor parallel size {tp}",
                field="tp",
                value=tp,
                hint=f"layer {self.name}; this model does not replicate KV heads over TP ranks",
            )
        if self.num_attention_heads is not None and self.num_attention_heads % tp:
            raise InputError(
                f"{self.num_attention_heads} attention heads are not divisible by tensor parallel size {tp}",
                field="tp",
                value=tp,
                hint=f"layer {self.name}; vLLM requires num_attention_heads % tp == 0",
            )
        kv_heads_per_rank(self.num_kv_heads, tp, layer=self.name)


@record(frozen=True, eq=False)
class SlidingWindowLayer(AttentionLayer):
    """Attention over the last ``sliding_window`` tokens."""

    kind: ClassVar[str] = "sliding_window"
    sliding_window: int = 0


@record(frozen=True, eq=False)
class SinkAttentionLayer(AttentionLayer):
    """Full attention that also attends to ``sink_len`` learned sink tokens kept in
    blocks of their own (openPangu's static sink attention)."""

    kind: ClassVar[str] = "sink_full"
    sink_len: int = 0


@record(frozen=True, eq=False)
class CrossAttentionLayer(AttentionLayer):
    """An encoder-decoder model's cross attention over the encoder's output."""

    kind: ClassVar[str] = "cross_attention"


@record(frozen=True, eq=False)
class ChunkedLocalLayer(AttentionLayer):
    """Attention inside chunks of ``attention_chunk_size`` tokens."""

    kind: ClassVar[str] = "chunked_local"
    attention_chunk_size: int = 0


@record(frozen=True, eq=False)
class SharedKVLayer(Layer):
    """An attention layer that reads the KV cache of an earlier layer, ``target``
    (vLLM's ``kv_sharing_target_layer_name``): no spec and no pages of its own; on
    the workers it joins its target's KV cache group and aliases its tensor."""

    kind: ClassVar[str] = "shared"
    target: str = ""

    @property
    def kv_sharing_target(self) -> str | None:
        return self.target


@record(frozen=True, eq=False)
class MLALayer(Layer):
    """Multi-head latent attention: one row of ``kv_lora_rank + qk_rope_head_dim``,
    the same on every TP rank (vLLM does not shard the latent cache)."""

    kind: ClassVar[str] = "mla"
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    dtype: str | None = None
    block_size: int | None = None
    page_size_padded: int | None = None
    # DeepSeek Sparse Attention: the layer attends to the indexer's top-k
    # tokens only (a sparse MLA backend); the shared top-k buffer's width as
    # the spec records it (index_topk, vLLM 0.33+); whether this layer runs
    # the lightning indexer, as the spec records it (vLLM 0.30+).
    sparse: bool = False
    topk_buffer_width: int | None = None
    index_group_leader: bool = False


@record(frozen=True, eq=False)
class MLAIndexerLayer(Layer):
    """DeepSeek Sparse Attention's lightning-indexer key cache: one uint8 row of
    ``head_size`` bytes per token (``index_head_dim`` fp8 values and one 4-byte
    scale per 128), one head, the same on every TP rank."""

    kind: ClassVar[str] = "mla_indexer"
    head_size: int = 0


@record(frozen=True, eq=False)
class MambaLayer(Layer):
    """Recurrent state whose per-rank shapes are given (or computed by a subclass).

    ``prefill_checkpoint_alignment``: the token multiple at which the layer
    exports its state from inside a prefill in ``align`` mode, where its
    prefill kernel on the GPU can (``checkpoints_on``); vLLM then keeps block
    sizes on it and, when every state layer exports, gives the layer's spec one
    checkpoint block.  None when it exports none.
    ``fixed_checkpoint_alignment``: the spec keeps one checkpoint block with
    this alignment whatever the mode and GPU (vLLM's Mamba2 mixer); None: no
    such block.
    """

    kind: ClassVar[str] = "mamba"
    shapes: tuple[tuple[int, ...], ...] = ()
    dtypes: tuple[str, ...] = ()
    mamba_type: str = "mamba2"
    block_size: int | None = None
    page_size_padded: int | None = None
    prefill_checkpoint_alignment: int | None = None
    fixed_checkpoint_alignment: int | None = None

    def checkpoints_on(self, arch: str) -> bool:
        """Whether the prefill kernel vLLM picks on a GPU of ``arch`` exports checkpoints."""
        return self.prefill_checkpoint_alignment is not None

    def state(self, tp: int, num_spec: int = 0) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
        """Per-rank state shapes and their dtypes, with ``num_spec`` speculative tokens."""
        return self.shapes, self.dtypes

    def state_bytes(self, tp: int, num_spec: int = 0) -> int:
        """Unpadded bytes of one request's state on one rank."""
        shapes, dtypes = self.state(tp, num_spec)
        return sum(prod(s) * dtype_size(d) for s, d in zip(shapes, dtypes, strict=True))


@record(frozen=True, eq=False)
class ModelDescription:
    """Everything kvplan knows about a model before serving options apply."""

    architecture: str
    family: str
    num_hidden_layers: int
    layers: tuple[Layer, ...]
    dtype: str
    max_position_embeddings: int | None
    source: str
    config: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    notes: tuple[str, ...] = ()

    def layers_in(self, start: int, end: int) -> list[Layer]:
        """The KV-cache-holding layers whose decoder index is in ``[start, end)``."""
        return [layer for layer in self.layers if start <= layer.index < end]
