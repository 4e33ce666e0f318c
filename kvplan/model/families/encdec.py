"""Encoder-decoder models: the decoder's self attention and its cross attention.

The encoder keeps no KV cache (its attention is over the whole input at once);
every decoder layer keeps a self-attention cache for the decoded tokens and a
cross-attention cache for the encoder's output, whose size is the scheduler's
encoder budget (vLLM's ``CrossAttentionSpec``), not ``max_model_len``.
"""

from __future__ import annotations

from kvplan.errors import InputError
from kvplan.model.config import Config, value
from kvplan.model.layers import AttentionLayer, CrossAttentionLayer, Layer
from kvplan.releases import Release


def whisper(cfg: Config, source: str, release: Release, *, prefix: str = ".decoder.layers") -> list[Layer]:
    """Whisper: ``decoder_layers`` layers of multi-head self and cross attention,
    ``decoder_attention_heads`` heads of ``d_model / heads`` (KV heads = heads).

    vLLM registers them as ``.decoder.layers.{i}.layers.self_attn.attn`` and
    ``.decoder.layers.{i}.layers.encoder_attn.attn`` (whisper.py builds the model
    with an empty prefix and the decoder layer adds ``.layers``).
    """
    n = value(cfg, "decoder_layers", source)
    heads = value(cfg, "decoder_attention_heads", source)
    d_model = value(cfg, "d_model", source)
    if d_model % heads:
        raise InputError(
            f"d_model ({d_model}) is not divisible by decoder_attention_heads ({heads})",
            source=source,
            field="d_model",
        )
    head = d_model // heads
    out: list[Layer] = []
    for i in range(n):
        base = f"{prefix}.{i}.layers"
        out.append(
            AttentionLayer(
                f"{base}.self_attn.attn", i, num_kv_heads=heads, head_size=head, num_attention_heads=heads
            )
        )
        out.append(
            CrossAttentionLayer(
                f"{base}.encoder_attn.attn", i, num_kv_heads=heads, head_size=head, num_attention_heads=heads
            )
        )
    return out
