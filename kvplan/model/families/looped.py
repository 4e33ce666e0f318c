"""Decoders that run some layers more than once and keep a KV cache per pass.

IQuest LoopCoder, Dory and HRM-Text reuse a layer's weights on several passes
(loops, recurrence steps), and vLLM builds one attention cache for every pass
of a layer.  The extra caches register under "virtual" layer numbers: pass
``p`` of layer ``i`` is named as layer ``p x L + i`` (``L`` the layer count of
the stack), while the pipeline stage is that of the physical layer ``i``.
Each deriver lists the caches in the order vLLM creates them (layer by layer,
pass by pass).
"""

from __future__ import annotations

from kvplan.errors import InputError, PlannerRefusal
from kvplan.model.config import Config, attention_heads, layer_types, tokens, value
from kvplan.model.families.dense import attention, global_window
from kvplan.model.layers import AttentionLayer, Layer, SlidingWindowLayer
from kvplan.records import record
from kvplan.releases import Release


def iquest_loopcoder(
    cfg: Config, source: str, release: Release, *, prefix: str = "model.layers"
) -> list[Layer]:
    """IQuest LoopCoder (iquest_loopcoder.py): ``loop_num`` attentions a layer (2 when
    the config names none).  Loop 0 keeps the cache the serving config gives (the
    model-wide window, if any); every later loop slides over ``loop_window_size``
    tokens (64 by default).  Head size is ``hidden_size / num_attention_heads``
    (``head_dim`` is not read)."""
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, hidden = attention_heads(cfg, source)
    if hidden % heads:
        raise InputError(
            f"hidden_size ({hidden}) is not divisible by num_attention_heads ({heads})",
            source=source,
            field="hidden_size",
        )
    loops = value(cfg, "loop_num", source, default=2)
    window = value(cfg, "loop_window_size", source, default=64)
    everywhere = global_window(cfg, None, release)
    out: list[Layer] = []
    for i in range(n):
        for loop in range(loops):
            out.append(
                attention(
                    f"{prefix}.{loop * n + i}.self_attn.attn",
                    i,
                    heads,
                    kv,
                    hidden // heads,
                    window if loop else everywhere,
                )
            )
    return out


class _OneRank:
    """A layer of a model vLLM builds only without tensor parallelism."""

    name: str

    def check_tp(self, tp: int) -> None:
        if tp != 1:
            message = "Dory currently supports tensor_parallel_size=1 only"
            raise PlannerRefusal(message, "serve it with --tensor-parallel-size 1", vllm_message=message)


@record(frozen=True, eq=False)
class OneRankAttentionLayer(_OneRank, AttentionLayer):
    """Full attention of a model that runs on one TP rank only (Dory)."""


@record(frozen=True, eq=False)
class OneRankSlidingWindowLayer(_OneRank, SlidingWindowLayer):
    """Sliding-window attention of a model that runs on one TP rank only (Dory)."""


def _count(cfg: Config, key: str, source: str) -> int:
    got = cfg.get(key)
    if isinstance(got, bool) or not isinstance(got, int) or got < 0:
        raise InputError("must be a whole number", source=source, field=key, value=got)
    return got


def dory(cfg: Config, source: str, release: Release, *, prefix: str = "backbone.layers") -> list[Layer]:
    """Dory (dory.py): every layer is attention or an MLP block (``layer_types``
    ``mlp``: no cache).  The recurrent layers (``n_input_layers`` <= i <
    ``n_input_layers + n_recurrent_layers``) run ``n_recurrent_loops`` times and,
    with ``recurrent_kv_cache_mode`` ``per_loop``, keep a cache per loop.  KV heads
    are ``num_key_value_heads`` undivided: vLLM serves Dory on one TP rank only."""
    n = value(cfg, "num_hidden_layers", source)
    first = _count(cfg, "n_input_layers", source)
    last = _count(cfg, "n_output_layers", source)
    recurrent = cfg.get("n_recurrent_layers")
    recurrent = n - first - last if recurrent is None else _count(cfg, "n_recurrent_layers", source)
    if first + recurrent + last != n:
        raise InputError(
            "input, recurrent and output layers must add up to num_hidden_layers",
            source=source,
            field="n_recurrent_layers",
            value=recurrent,
        )
    loops = value(cfg, "n_recurrent_loops", source)
    mode = cfg.get("recurrent_kv_cache_mode")
    if mode not in ("per_loop", "last_loop"):
        raise InputError(
            "must be per_loop or last_loop", source=source, field="recurrent_kv_cache_mode", value=mode
        )
    types = layer_types(cfg, source, n) or [
        "mlp" if i % 2 else "full_attention" if i % 8 == 6 else "sliding_attention" for i in range(n)
    ]
    unknown = set(types) - {"sliding_attention", "full_attention", "mlp"}
    if unknown:
        raise InputError(f"unknown layer types {sorted(unknown)}", source=source, field="layer_types")
    heads, kv, _ = attention_heads(cfg, source)
    head = value(cfg, "head_dim", source)
    window = tokens(cfg, "sliding_window", source)
    if "sliding_attention" in types and window is None:
        raise InputError("must be a positive number of tokens", source=source, field="sliding_window")
    everywhere = global_window(cfg, types, release)
    out: list[Layer] = []
    for i, kind in enumerate(types):
        if kind == "mlp":
            continue
        passes = loops if mode == "per_loop" and first <= i < first + recurrent else 1
        for loop in range(passes):
            name = f"{prefix}.{loop * n + i}.mixer.attn"
            sliding = window if kind == "sliding_attention" else everywhere
            if sliding:
                out.append(
                    OneRankSlidingWindowLayer(
                        name,
                        i,
                        num_kv_heads=kv,
                        head_size=head,
                        num_attention_heads=heads,
                        sliding_window=sliding,
                    )
                )
            else:
                out.append(
                    OneRankAttentionLayer(name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads)
                )
    return out


def hrm_text(cfg: Config, source: str, release: Release, *, prefix: str = "model") -> list[Layer]:
    """HRM-Text (hrm_text.py): two stacks of ``num_layers_per_stack`` layers, L and H.
    Step ``s`` of the recurrence is ``h x (L_cycles + 1) + l``: the L stack runs at
    ``l < L_cycles``, the H stack at ``l = L_cycles``, for ``h < H_cycles``; each
    layer keeps one cache per step it runs, named ``s x num_layers_per_stack + i``.

    Attention is multi-head (KV heads = heads) with ``head_dim``; the config class
    keeps the per-stack count in ``num_layers_per_stack`` and rewrites
    ``num_hidden_layers`` to the unrolled count, so a config.json without
    ``num_layers_per_stack`` gives the per-stack count as ``num_hidden_layers``.
    The layers run non-causally over the prompt (vLLM then turns chunked prefill
    and prefix caching off); their cache is full attention all the same.

    The defaults kvplan fills in are transformers' HrmTextConfig's (5.20).  vLLM
    reads the config class from transformers or the checkpoint's own code: with a
    transformers that has no hrm_text (5.6 has none, 5.10 has it) a config.json
    without ``auto_map`` is refused by vLLM, which kvplan does not check.
    """
    per_stack = value(cfg, "num_layers_per_stack", source, default=None) or value(
        cfg, "num_hidden_layers", source
    )
    high = value(cfg, "H_cycles", source)
    low = value(cfg, "L_cycles", source)
    heads = value(cfg, "num_attention_heads", source)
    hidden = value(cfg, "hidden_size", source)
    head = value(cfg, "head_dim", source, default=None)
    if head is None:
        if hidden % heads:
            raise InputError(
                f"hidden_size ({hidden}) is not divisible by num_attention_heads ({heads})",
                source=source,
                field="hidden_size",
            )
        head = hidden // heads
    window = global_window(cfg, None, release)
    stacks = (
        ("L_module", [h * (low + 1) + j for h in range(high) for j in range(low)]),
        ("H_module", [h * (low + 1) + low for h in range(high)]),
    )
    out: list[Layer] = []
    for stack, steps in stacks:
        for i in range(per_stack):
            for step in steps:
                name = f"{prefix}.{stack}.layers.{step * per_stack + i}.self_attn.attn"
                out.append(attention(name, i, heads, heads, head, window))
    return out
