"""The stable JSON document (``--format json``, schema 1) built from a ``Result``.

Every renderer (table, Markdown, explain) reads this same finished data, so
the numbers printed in every format are the same numbers.
"""

from __future__ import annotations

from typing import Any

from kvplan.assemble import Result
from kvplan.planner import Branch, Group, Tensor
from kvplan.specs import (
    AttentionSpec,
    KVCacheSpec,
    MambaSpec,
    UniformTypeSpecs,
    layer_spec,
)

SCHEMA = 1


def spec_dict(spec: KVCacheSpec) -> dict[str, Any]:
    """A spec as JSON: its kind, block size, page size and its own fields."""
    out: dict[str, Any] = {
        "type": spec.kind,
        "block_size": spec.block_size,
        "page_size_bytes": spec.page_size_bytes,
    }
    if isinstance(spec, AttentionSpec):
        out.update(num_kv_heads=spec.num_kv_heads, head_size=spec.head_size, dtype=spec.dtype)
        for name in ("sliding_window", "attention_chunk_size", "head_size_v", "cache_dtype_str"):
            value = getattr(spec, name, None)
            if value is not None:
                out[name] = value
        if spec.page_size_padded:
            out["page_size_padded"] = spec.page_size_padded
    elif isinstance(spec, MambaSpec):
        out.update(
            shapes=[list(s) for s in spec.shapes],
            dtypes=list(spec.dtypes),
            mamba_type=spec.mamba_type,
            real_page_size_bytes=spec.real_page_size_bytes,
        )
        if spec.page_size_padded:
            out["page_size_padded"] = spec.page_size_padded
    elif isinstance(spec, UniformTypeSpecs):
        out["layer_page_size_bytes"] = {n: s.page_size_bytes for n, s in spec.layer_specs}
    return out


def _tensor(t: Tensor) -> dict[str, Any]:
    out: dict[str, Any] = {"size": t.size, "shared_by": list(t.shared_by)}
    for name in ("offset", "layer_stride", "block_stride"):
        value = getattr(t, name)
        if value is not None:
            out[name] = value
    return out


def _branch(b: Branch) -> dict[str, Any]:
    if not b.applicable:
        return {"applicable": False, "reason": b.reason}
    return {
        "applicable": True,
        "num_blocks": b.num_blocks,
        "bytes_per_block": b.bytes_per_block,
        "divisor": b.divisor,
        "kv_cache_tensors": [_tensor(t) for t in b.tensors],
    }


def _group(g: Group) -> dict[str, Any]:
    return {"layer_names": list(g.layer_names), "spec": spec_dict(g.spec)}


def layer_rows(result: Result) -> list[dict[str, Any]]:
    """Per-layer facts on one TP rank, in model order, with each layer's stage."""
    rows = []
    spec_of: dict[str, KVCacheSpec] = {}
    for g in result.plan.groups:
        for n in g.layer_names:
            spec_of[n] = layer_spec(g.spec, n)
    for stage, specs in enumerate(result.layout.stage_specs):
        for name, raw in specs.items():
            spec = spec_of.get(name, raw)
            row: dict[str, Any] = {
                "name": name,
                "stage": stage,
                "type": spec.kind if not isinstance(raw, MambaSpec) else raw.kind,
                "num_kv_heads": getattr(spec, "num_kv_heads", None),
                "head_size": getattr(spec, "head_size", None),
                "dtype": getattr(spec, "dtype", None)
                or (",".join(raw.dtypes) if isinstance(raw, MambaSpec) else None),
                "block_size": spec.block_size,
                "bytes_per_token": spec.bytes_per_token,
                "page_size_bytes": spec.page_size_bytes,
            }
            if spec != raw:
                row["derived_spec"] = spec_dict(raw)
            rows.append(row)
    return rows


_PICTURE_TERMS = {
    "weights": "weights",
    "activation peak": "activation",
    "non-torch memory": "non_torch",
    "CUDA graphs": "cuda_graphs",
}


def _picture(result: Result, budget: Any, stage: Any) -> dict[str, int]:
    """Where one GPU's memory goes (bytes): model terms, KV cache, unused KV, headroom."""
    picture = {key: 0 for key in _PICTURE_TERMS.values()}
    for term in budget.terms:
        if term.name in _PICTURE_TERMS:
            picture[_PICTURE_TERMS[term.name]] = -term.bytes
    picture["kv_cache"] = stage.num_blocks * stage.bytes_per_block
    picture["unused_kv"] = stage.unused_bytes
    total = result.budget.total_bytes
    usable = int(total * result.budget.gpu_memory_utilization) if total else None
    picture["outside_utilization"] = total - usable if total and usable else 0
    return picture


def document(result: Result) -> dict[str, Any]:
    """The JSON document of one plan (schema 1)."""
    plan = result.plan
    cap = plan.capacity
    fit = plan.fit
    stages = []
    for stage, (start, end) in zip(plan.stages, result.layout.ranges, strict=True):
        stages.append(
            {
                "pp_rank": stage.pp_rank,
                "layers": list(stage.layer_names),
                "decoder_layers": [start, end],
                "available_kv_bytes": stage.available_bytes,
                "num_blocks_before_unify": stage.num_blocks_before_unify,
                "num_blocks": stage.num_blocks,
                "bytes_per_block": stage.bytes_per_block,
                "unused_bytes": stage.unused_bytes,
                "kv_cache_tensors": [_tensor(t) for t in stage.tensors],
                "branches": {name: _branch(b) for name, b in stage.branches.items() if name != "none"},
                "branch_taken": stage.branch_taken,
            }
        )
    memory = {
        "exact": result.budget.exact,
        "gpu_memory_utilization": result.budget.gpu_memory_utilization,
        "total_bytes": result.budget.total_bytes,
        "total_source": result.budget.total_source,
        "stages": [
            {
                "pp_rank": s.pp_rank,
                "available_kv_bytes": s.available,
                "picture": _picture(result, s, plan.stages[s.pp_rank]),
                "terms": [
                    {"name": t.name, "bytes": t.bytes, "estimated": t.estimated, "source": t.source}
                    for t in s.terms
                ],
            }
            for s in result.budget.stages
        ],
    }
    return {
        "schema": SCHEMA,
        "model": {
            "name": result.model.label,
            "source": result.model.source,
            "architecture": result.description.architecture,
            "family": result.description.family,
            "num_hidden_layers": result.description.num_hidden_layers,
            "dtype": result.description.dtype,
        },
        "vllm_version": result.release.version,
        "serving": {
            "tp": result.serving.tp,
            "pp": result.serving.pp,
            "dcp": result.serving.dcp,
            "kv_cache_dtype": result.layout.kv_cache_dtype,
            "max_num_batched_tokens": result.max_num_batched_tokens,
            "max_num_seqs": result.max_num_seqs,
            "disable_hybrid_kv_cache_manager": bool(
                result.serving.disable_hybrid_kv_cache_manager
                if result.serving.disable_hybrid_kv_cache_manager is not None
                else any(layer.kind == "chunked_local" for layer in result.description.layers)
            ),
            "num_gpu_blocks_override": plan.num_gpu_blocks_override,
        },
        "block_size": plan.block_size,
        "block_size_source": result.layout.block_size_note,
        "num_blocks": plan.num_blocks,
        "usable_blocks": plan.usable_blocks,
        "null_block": 1,
        "kv_cache_tokens": cap.tokens if cap else 0,
        "max_concurrency": {
            "tokens_per_request": cap.tokens_per_request if cap else plan.max_model_len,
            "x": cap.max_concurrency if cap else None,
            "blocks_per_request": cap.blocks_per_request if cap else None,
        },
        "max_model_len": {
            "value": plan.max_model_len,
            "requested": plan.requested_max_model_len,
            "fits": fit.fits,
            "needed_bytes": fit.needed_bytes,
            "available_bytes": fit.available_bytes,
            "limiting_stage": fit.stage,
            "estimated_max": fit.estimated_max_model_len,
            "error": fit.error,
        },
        "log_lines": list(cap.log_lines) if cap else [],
        "stages": stages,
        "kv_cache_groups": [_group(g) for g in plan.groups],
        "layers": layer_rows(result),
        "memory": memory,
        "notes": list(plan.notes)
        + list(result.description.notes)
        + ([result.layout.kv_cache_dtype_note] if result.layout.kv_cache_dtype_note else []),
    }
