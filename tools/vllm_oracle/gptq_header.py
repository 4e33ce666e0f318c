"""Write the safetensors header of a 4-bit AutoGPTQ Llama checkpoint, without the data.

vLLM's GPTQ config reads which layers are quantized from the checkpoint's
safetensors headers when ``quantization_config`` has no
``modules_in_block_to_quantize`` (AutoGPTQConfig.maybe_update_config,
vllm/model_executor/layers/quantization/auto_gptq.py in 0.33.0).  A folder
holding only config.json would build every layer unquantized, so the oracle's
GPTQ configs carry a ``model.safetensors`` made of the header alone: the
8-byte length, then the JSON table of every tensor AutoGPTQ writes (name,
dtype, shape, offsets), no tensor data.  Nothing loads the data: the oracle
builds with dummy weights.

    python tools/vllm_oracle/gptq_header.py tests/oracle/configs/llama-3.1-8b-gptq
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

SIZES = {"F16": 2, "BF16": 2, "F32": 4, "I32": 4}


def tensors(cfg: dict) -> dict[str, tuple[str, list[int]]]:
    """AutoGPTQ's tensors for a Llama config: packed int32 weights and zero points, fp16 scales."""
    q = cfg["quantization_config"]
    bits, group = q["bits"], q["group_size"]
    pack = 32 // bits
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head = cfg.get("head_dim") or hidden // heads
    vocab = cfg["vocab_size"]
    out: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("F16", [vocab, hidden])}
    linears = {
        "self_attn.q_proj": (hidden, heads * head),
        "self_attn.k_proj": (hidden, kv * head),
        "self_attn.v_proj": (hidden, kv * head),
        "self_attn.o_proj": (heads * head, hidden),
        "mlp.gate_proj": (hidden, inter),
        "mlp.up_proj": (hidden, inter),
        "mlp.down_proj": (inter, hidden),
    }
    for layer in range(cfg["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        out[prefix + "input_layernorm.weight"] = ("F16", [hidden])
        out[prefix + "post_attention_layernorm.weight"] = ("F16", [hidden])
        for name, (k, n) in linears.items():
            out[f"{prefix}{name}.qweight"] = ("I32", [k // pack, n])
            out[f"{prefix}{name}.qzeros"] = ("I32", [k // group, n // pack])
            out[f"{prefix}{name}.scales"] = ("F16", [k // group, n])
            out[f"{prefix}{name}.g_idx"] = ("I32", [k])
    out["model.norm.weight"] = ("F16", [hidden])
    out["lm_head.weight"] = ("F16", [vocab, hidden])
    return out


def header(cfg: dict) -> bytes:
    table: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors(cfg).items():
        size = SIZES[dtype]
        for dim in shape:
            size *= dim
        table[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    body = json.dumps(table, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body


def main(argv: list[str]) -> int:
    folder = Path(argv[1])
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "model.safetensors").write_bytes(header(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
