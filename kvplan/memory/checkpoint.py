"""Exact weight bytes from a checkpoint's ``*.safetensors`` headers.

A safetensors file starts with an 8-byte little-endian header length and a
JSON header naming every tensor with its dtype, shape and byte range.  Only
those headers are read, never the tensors.  Each tensor is assigned to a PP
stage by its name (``layers.N.``, ``embed_tokens``, ``lm_head``, the final
norm) and divided as vLLM's tensor parallelism divides it.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

from kvplan.errors import InputError
from kvplan.inputs.serving import Serving
from kvplan.memory.sharding import MoeShards, moe_shards
from kvplan.model.config import tied_word_embeddings
from kvplan.model.layers import ModelDescription
from kvplan.records import record

MAX_HEADER = 100 * 1024 * 1024  # the format's own limit on the JSON header
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
_EMBED = ("embed_tokens", "wte", "tok_embeddings", "word_embeddings", "embeddings.weight")
# Tensors every TP rank holds whole: norms, MoE routers, MLA down-projections.
_REPLICATED = re.compile(
    r"norm|\.gate\.weight$|\.router\.|e_score_correction_bias|q_a_proj|kv_a_proj|ln_|layernorm"
)
_KV_PROJ = re.compile(r"\.(k_proj|v_proj)\.")
_EXPERT = re.compile(r"\.experts\.(?:(\d+)\.)?")


@record(frozen=True)
class TensorInfo:
    """One tensor as its file's header describes it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@record(frozen=True)
class StageBytes:
    """Bytes on one rank of one stage, and how many files were read."""

    bytes: int
    files: int


def read_header(path: Path) -> list[TensorInfo]:
    """The tensors listed in one ``.safetensors`` file (reads only its header)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise InputError("is not a safetensors file (shorter than 8 bytes)", source=str(path))
            (length,) = struct.unpack("<Q", raw)
            if length > MAX_HEADER:
                raise InputError(
                    f"has a {length}-byte header, larger than safetensors allows", source=str(path)
                )
            header = json.loads(fh.read(length))
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", source=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"has a malformed safetensors header ({exc})", source=str(path)) from None
    if not isinstance(header, dict):
        raise InputError("has a safetensors header that is not a JSON object", source=str(path))
    out = []
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        start, end = info.get("data_offsets", (0, 0))
        out.append(
            TensorInfo(name, str(info.get("dtype")), tuple(info.get("shape", ())), int(end) - int(start))
        )
    return out


def checkpoint_files(directory: Path) -> list[Path]:
    """The ``*.safetensors`` files of a model directory or HF snapshot, sorted."""
    return sorted(p for p in directory.glob("*.safetensors") if p.is_file())


@record(frozen=True)
class Index:
    """A sharded checkpoint's ``model.safetensors.index.json``: its total size and the shards absent."""

    total_size: int
    shards: int
    missing: tuple[str, ...]


def read_index(directory: Path) -> Index | None:
    """The index of a sharded checkpoint in ``directory`` (None without one, or when it is unreadable)."""
    path = directory / "model.safetensors.index.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    total = (data.get("metadata") or {}).get("total_size") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not isinstance(total, int) or total <= 0:
        return None
    shards = sorted({str(f) for f in weight_map.values()})
    missing = tuple(f for f in shards if not (directory / f).is_file())
    return Index(total, len(shards), missing)


def _per_rank(t: TensorInfo, cfg: dict[str, Any], tp: int, moe: MoeShards | None = None) -> float:
    expert = _EXPERT.search(t.name) if moe is not None else None
    if moe is not None and expert is not None:
        # Routed experts are split over TP x DP: whole experts under expert parallelism
        # (rank 0's share, the largest), else each expert divided (weights.MoeShards).
        if moe.ep > 1:
            total = _expert_count(cfg)
            local = moe.local_experts(total)
            if expert.group(1) is not None:
                return t.nbytes if int(expert.group(1)) < local else 0
            return t.nbytes * local / total if total else t.nbytes
        if len(t.shape) <= 1 and not t.name.endswith("bias"):
            return t.nbytes
        return t.nbytes / moe.tp
    if tp == 1 or (len(t.shape) <= 1 and not t.name.endswith("bias")):
        return t.nbytes
    if _REPLICATED.search(t.name):
        return t.nbytes
    if _KV_PROJ.search(t.name):
        kv = cfg.get("num_key_value_heads") or cfg.get("num_attention_heads") or tp
        if isinstance(kv, int) and kv < tp:
            return t.nbytes / kv  # one replicated KV head per rank
    return t.nbytes / tp


def _expert_count(cfg: dict[str, Any]) -> int:
    for key in ("num_experts", "n_routed_experts", "num_local_experts"):
        value = cfg.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 0


def stage_bytes(
    model: ModelDescription,
    serving: Serving,
    directory: Path,
    start: int,
    end: int,
    *,
    first: bool,
    last: bool,
) -> StageBytes | None:
    """Exact weight bytes on one TP rank of the stage holding layers ``[start, end)``.

    None when ``directory`` holds no ``*.safetensors`` file.  Layers at or
    beyond ``num_hidden_layers`` (multi-token-prediction heads) are not loaded
    by vLLM and are skipped; tensors outside the decoder (vision towers,
    projectors) go to the first stage.
    """
    files = checkpoint_files(directory)
    if not files:
        return None
    moe = moe_shards(serving)
    cfg = model.config
    tied = tied_word_embeddings(cfg)
    has_head = False
    embed_bytes = 0.0
    total = 0.0
    for path in files:
        for t in read_header(path):
            share = _per_rank(t, cfg, serving.tp, moe)
            layer = _LAYER.search(t.name)
            if layer is not None:
                index = int(layer.group(1))
                if start <= index < end and index < model.num_hidden_layers:
                    total += share
                continue
            if "lm_head" in t.name:
                has_head = True
                total += share if last else 0
            elif any(key in t.name for key in _EMBED):
                embed_bytes += share
                total += share if first else 0
            elif re.search(r"(^|\.)(norm|final_layernorm|ln_f)\.", t.name):
                total += share if last else 0
            else:
                total += share if first else 0
    if last and tied and not has_head and not first:
        total += embed_bytes  # vLLM builds the tied embedding again on the last stage
    return StageBytes(int(total), len(files))
