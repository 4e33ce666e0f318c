"""Per-layer KV cache specs, one small frozen class per kind of cache.

These mirror the spec classes of vLLM's ``vllm/v1/kv_cache_interface.py``:
each knows its own ``page_size_bytes`` (bytes of one block of ``block_size``
tokens, for one layer on one TP rank) and its ``max_memory_usage_bytes`` (what
one request of ``max_model_len`` tokens needs).  Callers never switch on a kind
to compute a size.

Specs are hashable and compare by class and fields, exactly like vLLM's frozen
dataclasses, because the planner groups layers by equal specs.
"""

from __future__ import annotations

from dataclasses import field, fields, replace
from math import prod
from operator import attrgetter
from typing import Any, ClassVar

from kvplan.dtypes import dtype_size
from kvplan.records import record


def cdiv(a: int, b: int) -> int:
    """Ceiling division of non-negative integers."""
    return -(a // -b)


@record(frozen=True, eq=False)
class Usage:
    """What a request may need, as the planner's memory checks see it.

    ``cp_size`` is the decode x prefill context-parallel size that divides the
    tokens each rank keeps; ``max_num_batched_tokens`` is the tokens in flight
    (doubled by async scheduling from 0.26); ``mamba_usage`` (``page``,
    ``blocks`` or ``mode``) and ``mamba_cache_mode`` select how Mamba state is
    counted in the release; ``mamba_all_spec_blocks``: mode ``all`` also counts the
    speculative blocks (0.22+).  ``max_num_encoder_input_tokens`` is the scheduler's
    encoder budget a cross-attention layer keeps for one request.
    """

    max_model_len: int
    max_num_batched_tokens: int
    cp_size: int = 1
    mamba_cache_mode: str = "none"
    mamba_usage: str = "mode"
    max_num_encoder_input_tokens: int = 0
    mamba_all_spec_blocks: bool = False


class SpecMergeError(Exception):
    """Layers whose specs cannot share one KV cache group."""


# Every spec is a frozen dataclass; equality, hashing and repr are written once
# on KVCacheSpec (over the fields, as dataclass would generate them) instead of
# being generated for each of the nine classes on every start.
_FIELDS: dict[type, tuple[str, ...]] = {}
_GETTERS: dict[type, Any] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return names


def _getter(cls: type) -> Any:
    getter = _GETTERS.get(cls)
    if getter is None:
        names = tuple(f.name for f in fields(cls) if f.compare)  # is_draft is not compared
        getter = _GETTERS[cls] = attrgetter(*names) if len(names) > 1 else (lambda o: (getattr(o, names[0]),))
    return getter


@record(frozen=True, eq=False, repr=False)
class KVCacheSpec:
    """The KV cache format of one layer on one worker (equal when type and every field are)."""

    kind: ClassVar[str] = "abstract"
    block_size: int
    # A draft (speculative decoding) model's layer; left out of equality, as in
    # vLLM, so it never changes how layers group.
    is_draft: bool = field(default=False, kw_only=True, compare=False)

    def _values(self) -> tuple[object, ...]:
        return _getter(type(self))(self)  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        values = ", ".join(f"{n}={getattr(self, n)!r}" for n in _field_names(type(self)))
        return f"{type(self).__name__}({values})"

    @property
    def page_size_bytes(self) -> int:
        """Bytes of one block (``block_size`` tokens) of this layer."""
        raise NotImplementedError

    @property
    def bytes_per_token(self) -> float | None:
        """Bytes one token costs in this layer, or None where state is per request."""
        return self.page_size_bytes / self.block_size

    def max_memory_usage_bytes(self, usage: Usage) -> int:
        """Bytes one request of ``usage.max_model_len`` tokens needs in this layer."""
        raise NotImplementedError

    def with_block_size(self, block_size: int) -> KVCacheSpec:
        """The same spec with another block size."""
        return replace(self, block_size=block_size)

    def same_type_as(self, other: KVCacheSpec) -> bool:
        """Whether both layers always need the same number of token slots.

        This is vLLM's ``UniformTypeKVCacheSpecs.is_uniform_type`` test for a
        pair of specs (block sizes are compared by the caller).
        """
        return type(self) is type(other) and self._type_key() == other._type_key()

    def _type_key(self) -> object:
        return None

    def merge(self, others: list[KVCacheSpec]) -> KVCacheSpec:
        """The group spec of layers with this spec and ``others`` (vLLM's ``merge``).

        Raises ``SpecMergeError`` when they cannot share one group.
        """
        if any(o != self for o in others):
            raise SpecMergeError("all layers in one KV cache group must have one spec")
        return self


@record(frozen=True, kw_only=True, eq=False, repr=False)
class AttentionSpec(KVCacheSpec):
    """A K and a V row per token and KV head (``page_size_padded`` may pad it)."""

    num_kv_heads: int
    head_size: int
    dtype: str
    page_size_padded: int | None = None

    @property
    def real_page_size_bytes(self) -> int:
        """The unpadded page: K and V for ``block_size`` tokens and every KV head."""
        return 2 * self.block_size * self.num_kv_heads * self.head_size * dtype_size(self.dtype)

    @property
    def page_size_bytes(self) -> int:
        return self.page_size_padded or self.real_page_size_bytes

    @property
    def bytes_per_token(self) -> float | None:
        return self.real_page_size_bytes / self.block_size

    def _attention_fields(self) -> tuple[object, ...]:
        return (self.block_size, self.num_kv_heads, self.head_size, self.dtype, self.page_size_padded)

    def as_full_attention(self, **window: int) -> FullAttentionSpec:
        """The same cache kept for every token (hybrid manager off), remembering
        the layer's window or chunk as vLLM's ``FullAttentionSpec`` does."""
        return FullAttentionSpec(
            block_size=self.block_size,
            num_kv_heads=self.num_kv_heads,
            head_size=self.head_size,
            dtype=self.dtype,
            page_size_padded=self.page_size_padded,
            is_draft=self.is_draft,
            **window,
        )


@record(frozen=True, kw_only=True, eq=False, repr=False)
class FullAttentionSpec(AttentionSpec):
    """Every token of the request is kept.

    ``sliding_window`` / ``attention_chunk_size`` are only set when vLLM's
    hybrid manager is disabled and a local layer is kept as full attention.
    """

    kind: ClassVar[str] = "full"
    head_size_v: int | None = None
    sliding_window: int | None = None
    attention_chunk_size: int | None = None

    @property
    def real_page_size_bytes(self) -> int:
        head_v = self.head_size if self.head_size_v is None else self.head_size_v
        return self.block_size * self.num_kv_heads * (self.head_size + head_v) * dtype_size(self.dtype)

    def max_memory_usage_bytes(self, usage: Usage) -> int:
        tokens = usage.max_model_len
        if usage.cp_size > 1:
            # Each context-parallel rank keeps only its share of the tokens.
            tokens = cdiv(tokens, usage.cp_size)
        return cdiv(tokens, self.block_size) * self.page_size_bytes

    def merge(self, others: list[KVCacheSpec]) -> KVCacheSpec:
        specs: list[KVCacheSpec] = [self, *others]
        if not all(type(s) is FullAttentionSpec for s in specs):
            raise SpecMergeError("all layers in one group must be full attention")
        full = [s for s in specs if isinstance(s, FullAttentionSpec)]
        if any(s._attention_fields() != self._attention_fields() for s in full):
            raise SpecMergeError("all attention layers in one group must have one spec")
        windows = {s.sliding_window for s in full if s.sliding_window is not None}
        chunks = {s.attention_chunk_size for s in full if s.attention_chunk_size is not None}
        if len(windows) > 1 or len(chunks) > 1 or (windows and chunks):
            raise SpecMergeError("one group cannot mix window or chunk sizes")
        return replace(
            self,
            sliding_window=next(iter(windows), None),
            attention_chunk_size=next(iter(chunks), None),
        )


@record(frozen=True, kw_only=True, eq=False, repr=False)
class SinkFullAttentionSpec(FullAttentionSpec):
    """Full attention behind ``sink_len`` learned sink tokens (openPangu's static sink
    attention, vLLM's ``SinkFullAttentionSpec``).

    Page and per-request memory are those of full attention: the sink's K and V
    live in ``sink_len / block_size`` blocks the KV cache manager sets aside when
    the scheduler starts, after the planner has sized the pool.
    """

    kind: ClassVar[str] = "sink_full"
    sink_len: int = 0

    def merge(self, others: list[KVCacheSpec]) -> KVCacheSpec:
        specs: list[KVCacheSpec] = [self, *others]
        full = [s for s in specs if isinstance(s, FullAttentionSpec) and not isinstance(s, MLAAttentionSpec)]
        if len(full) != len(specs):
            raise SpecMergeError("all layers in one group must be full attention")
        if any(s._attention_fields() != self._attention_fields() for s in full):
            raise SpecMergeError("all attention layers in one group must have one spec")
        # vLLM keeps the first layer's sink length.
        return self


@record(frozen=True, kw_only=True, eq=False, repr=False)
class MLAAttentionSpec(FullAttentionSpec):
    """Multi-head latent attention: one latent row per token, no separate V.

    The row is ``kv_lora_rank + qk_rope_head_dim`` wide, one "head", the same on
    every TP rank.  ``fp8_ds_mla`` packs a token into 656 bytes.

    DeepSeek Sparse Attention adds three fields (vLLM 0.30+ / 0.33+ carry them
    on the spec; they decide equality, never the page): ``cache_role`` is
    ``indexer`` for the lightning indexer's key cache (its own MLA-shaped
    spec, ``index_head_dim + index_head_dim / 128 * 4`` uint8 bytes a token)
    and ``sparse`` otherwise; ``index_group_leader`` marks the MLA layers that
    run an indexer; ``topk_buffer_width`` is the width of the shared top-k
    index buffer (``index_topk``) every sparse MLA layer reads.
    """

    kind: ClassVar[str] = "mla"
    cache_dtype_str: str | None = None
    cache_role: str = "sparse"
    index_group_leader: bool = False
    topk_buffer_width: int | None = None

    @property
    def real_page_size_bytes(self) -> int:
        if self.cache_dtype_str == "fp8_ds_mla":
            return self.block_size * 656
        return self.block_size * self.num_kv_heads * self.head_size * dtype_size(self.dtype)

    def _sparse_fields(self) -> tuple[object, ...]:
        return (self.cache_dtype_str, self.cache_role, self.index_group_leader, self.topk_buffer_width)

    def merge(self, others: list[KVCacheSpec]) -> KVCacheSpec:
        specs: list[KVCacheSpec] = [self, *others]
        if not all(isinstance(s, MLAAttentionSpec) for s in specs):
            raise SpecMergeError("all layers in one group must be MLA")
        mla = [s for s in specs if isinstance(s, MLAAttentionSpec)]
        if len({s._sparse_fields() for s in mla}) != 1:
            raise SpecMergeError(
                "all MLA layers in one group must use one cache dtype, cache role, "
                "index-sharing role and top-k buffer width"
            )
        # vLLM keeps the first layer's fields; differing MLA layers are not merged.
        if any(s._attention_fields() != self._attention_fields() for s in mla):
            raise SpecMergeError("all MLA layers in one group must have one spec")
        return self


@record(frozen=True, kw_only=True, eq=False, repr=False)
class SlidingWindowSpec(AttentionSpec):
    """Only the last ``sliding_window`` tokens (plus the batch being computed) are kept."""

    kind: ClassVar[str] = "sliding_window"
    sliding_window: int
    # Tokens kept below the window for multi-module MTP (num_speculative_tokens - 1, 0.28+).
    extra_retained_tokens: int = 0
    head_size_v: int | None = None

    @property
    def real_page_size_bytes(self) -> int:
        # V rows may be narrower than K rows (MiMo-V2's sliding layers).
        head_v = self.head_size if self.head_size_v is None else self.head_size_v
        return self.block_size * self.num_kv_heads * (self.head_size + head_v) * dtype_size(self.dtype)

    def max_memory_usage_bytes(self, usage: Usage) -> int:
        tokens = min(
            self.sliding_window - 1 + self.extra_retained_tokens + usage.max_num_batched_tokens,
            usage.max_model_len,
        )
        # One extra block: the window need not start on a block boundary.
        return (cdiv(tokens, self.block_size) + 1) * self.page_size_bytes

    def _type_key(self) -> object:
        return self.sliding_window

    def as_full_attention(self, **window: int) -> FullAttentionSpec:
        full = super().as_full_attention(sliding_window=self.sliding_window)
        return replace(full, head_size_v=self.head_size_v) if self.head_size_v is not None else full


@record(frozen=True, kw_only=True, eq=False, repr=False)
class ChunkedLocalAttentionSpec(AttentionSpec):
    """Attention within chunks of ``attention_chunk_size`` tokens (Llama 4)."""

    kind: ClassVar[str] = "chunked_local"
    attention_chunk_size: int

    def max_memory_usage_bytes(self, usage: Usage) -> int:
        tokens = min(self.attention_chunk_size + usage.max_num_batched_tokens, usage.max_model_len)
        return cdiv(tokens, self.block_size) * self.page_size_bytes

    def _type_key(self) -> object:
        return self.attention_chunk_size

    def as_full_attention(self, **window: int) -> FullAttentionSpec:
        return super().as_full_attention(attention_chunk_size=self.attention_chunk_size)


@record(frozen=True, kw_only=True, eq=False, repr=False)
class CrossAttentionSpec(AttentionSpec):
    """An encoder-decoder model's cross attention: K and V of the encoder's output,
    kept for the scheduler's encoder budget rather than for ``max_model_len``
    (vLLM's ``max_num_encoder_input_tokens``, which is ``max_num_batched_tokens``)."""

    kind: ClassVar[str] = "cross_attention"

    def max_memory_usage_bytes(self, usage: Usage) -> int:
        return cdiv(usage.max_num_encoder_input_tokens, self.block_size) * self.page_size_bytes


@record(frozen=True, eq=False, repr=False)
class MambaSpec(KVCacheSpec):
    """Recurrent state (Mamba, gated delta net, ...): a fixed size per request.

    ``shapes`` are the per-rank state tensors and ``dtypes`` their dtypes; one
    "page" holds one request's whole state, padded to ``page_size_padded``.
    ``num_prefill_checkpoint_blocks`` (vLLM 0.29+) are the extra pages an
    ``align``-mode request keeps for a state exported from inside a prefill,
    at offsets that are multiples of ``prefill_checkpoint_alignment`` tokens
    (0.30+); both decide equality, as in vLLM.
    """

    kind: ClassVar[str] = "mamba"
    shapes: tuple[tuple[int, ...], ...] = ()
    dtypes: tuple[str, ...] = ()
    page_size_padded: int | None = None
    mamba_type: str = "mamba2"
    num_speculative_blocks: int = 0
    num_prefill_checkpoint_blocks: int = 0
    prefill_checkpoint_alignment: int | None = None

    @property
    def real_page_size_bytes(self) -> int:
        """Bytes of the state tensors, unpadded."""
        return sum(prod(s) * dtype_size(d) for s, d in zip(self.shapes, self.dtypes, strict=True))

    @property
    def page_size_bytes(self) -> int:
        return self.page_size_padded or self.real_page_size_bytes

    @property
    def bytes_per_token(self) -> float | None:
        return None

    def max_memory_usage_bytes(self, usage: Usage) -> int:
        if usage.mamba_usage == "page":
            return self.page_size_bytes
        if usage.mamba_usage == "blocks" or usage.mamba_cache_mode == "all":
            pages = cdiv(usage.max_model_len, self.block_size)
            if usage.mamba_cache_mode == "all" and usage.mamba_all_spec_blocks:
                pages += self.num_speculative_blocks
            return pages * self.page_size_bytes
        if usage.mamba_cache_mode == "align":
            pages = 2 + self.num_speculative_blocks + self.num_prefill_checkpoint_blocks
            return self.page_size_bytes * pages
        return self.page_size_bytes * (1 + self.num_speculative_blocks)

    def _type_key(self) -> object:
        return (
            self.num_speculative_blocks,
            self.num_prefill_checkpoint_blocks,
            self.prefill_checkpoint_alignment,
        )


@record(frozen=True, eq=False, repr=False)
class UniformTypeSpecs(KVCacheSpec):
    """Layers of one type but different sizes, kept in one group (vLLM's
    ``UniformTypeKVCacheSpecs``).  A "page" is the sum of every layer's page:
    one block id addresses one page in each layer's own tensor.
    """

    kind: ClassVar[str] = "uniform_type"
    layer_specs: tuple[tuple[str, KVCacheSpec], ...] = field(default=())

    @property
    def specs(self) -> dict[str, KVCacheSpec]:
        """Layer name to that layer's spec."""
        return dict(self.layer_specs)

    @property
    def page_size_bytes(self) -> int:
        return sum(spec.page_size_bytes for _, spec in self.layer_specs)

    @property
    def bytes_per_token(self) -> float | None:
        return None

    def max_memory_usage_bytes(self, usage: Usage) -> int:
        pages = max(
            cdiv(spec.max_memory_usage_bytes(usage), spec.page_size_bytes) for _, spec in self.layer_specs
        )
        return pages * self.page_size_bytes

    def restricted_to(self, names: list[str]) -> UniformTypeSpecs:
        """The same spec holding only the named layers (a PP stage's share)."""
        specs = self.specs
        return UniformTypeSpecs(block_size=self.block_size, layer_specs=tuple((n, specs[n]) for n in names))

    @staticmethod
    def is_uniform_type(specs: dict[str, KVCacheSpec]) -> bool:
        """Whether every layer needs the same number of token slots (same type)."""
        values = list(specs.values())
        first = values[0]
        if len({s.block_size for s in values}) > 1:
            return False
        if isinstance(first, FullAttentionSpec):
            # MLA counts as full attention here, as in vLLM's isinstance test.
            return all(isinstance(s, FullAttentionSpec) for s in values)
        return all(first.same_type_as(s) for s in values)


def layer_spec(spec: KVCacheSpec, layer_name: str) -> KVCacheSpec:
    """The spec of one layer inside a group spec (itself unless uniform type)."""
    if isinstance(spec, UniformTypeSpecs):
        return spec.specs[layer_name]
    return spec
