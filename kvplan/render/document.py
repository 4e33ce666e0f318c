"""The stable JSON document (``--format json``, schema 1) of a ``Plan``."""

from __future__ import annotations

from typing import Any

from kvplan.api import LayerRow, Plan
from kvplan.vllm.planner import Branch, Group, Tensor
from kvplan.vllm.specs import AttentionSpec, KVCacheSpec, MambaSpec, UniformTypeSpecs

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
        for name in ("sliding_window", "attention_chunk_size", "head_size_v", "cache_dtype_str", "sink_len"):
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
        if spec.num_prefill_checkpoint_blocks:
            out["num_prefill_checkpoint_blocks"] = spec.num_prefill_checkpoint_blocks
            out["prefill_checkpoint_alignment"] = spec.prefill_checkpoint_alignment
    elif isinstance(spec, UniformTypeSpecs):
        out["layer_page_size_bytes"] = {n: s.page_size_bytes for n, s in spec.layer_specs}
    return out


def _tensor(t: Tensor) -> dict[str, Any]:
    out: dict[str, Any] = {"size": t.size, "shared_by": list(t.shared_by)}
    for name in ("offset", "layer_stride", "block_stride"):
        value = getattr(t, name)
        if value is not None:
            out[name] = value
    if t.aliased_by:
        out["aliased_by"] = list(t.aliased_by)
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
    out: dict[str, Any] = {"layer_names": list(g.layer_names), "spec": spec_dict(g.spec)}
    if g.shared_layers:
        out["shared_layers"] = list(g.shared_layers)
    return out


def _layer(row: LayerRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": row.name,
        "stage": row.stage,
        "type": row.type,
        "num_kv_heads": row.num_kv_heads,
        "head_size": row.head_size,
        "dtype": row.dtype,
        "block_size": row.block_size,
        "bytes_per_token": row.bytes_per_token,
        "page_size_bytes": row.page_size_bytes,
    }
    if row.derived_spec is not None:
        out["derived_spec"] = spec_dict(row.derived_spec)
    return out


def document(plan: Plan) -> dict[str, Any]:
    """The JSON document of one plan (schema 1)."""
    cap = plan.capacity
    fit = plan.fit
    stages = []
    for stage, (start, end) in zip(plan.stages, plan.layout.ranges, strict=True):
        sharing = plan.layout.kv_sharing[stage.pp_rank] if plan.layout.kv_sharing else {}
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
                **({"kv_sharing": dict(sharing)} if sharing else {}),
            }
        )
    memory = {
        "exact": plan.memory.exact,
        "gpu_memory_utilization": plan.memory.gpu_memory_utilization,
        "total_bytes": plan.memory.total_bytes,
        "total_source": plan.memory.total_source,
        "model_runner": plan.memory.runner,
        "stages": [
            {
                "pp_rank": s.pp_rank,
                "available_kv_bytes": s.available,
                "picture": plan.memory_picture(s),
                "terms": [
                    {"name": t.name, "bytes": t.bytes, "estimated": t.estimated, "source": t.source}
                    for t in s.terms
                ],
            }
            for s in plan.memory.stages
        ],
    }
    return {
        "schema": SCHEMA,
        "model": {
            "name": plan.model.label,
            "source": plan.model.source,
            "architecture": plan.description.architecture,
            "family": plan.description.family,
            "num_hidden_layers": plan.description.num_hidden_layers,
            "dtype": plan.description.dtype,
        },
        "vllm_version": plan.release.version,
        "serving": {
            "tp": plan.serving.tp,
            "pp": plan.serving.pp,
            "dcp": plan.serving.dcp,
            "dp": plan.serving.dp,
            "gpus": plan.serving.gpus,
            "enable_expert_parallel": plan.serving.enable_expert_parallel,
            "expert_parallel_size": plan.serving.expert_parallel_size,
            "enable_prefix_caching": plan.prefix_caching,
            "mamba_cache_mode": plan.layout.mamba_cache_mode,
            "async_scheduling": plan.engine.async_scheduling,
            "cpu_offload_gb": plan.serving.cpu_offload_gb,
            "kv_cache_dtype": plan.kv_cache_dtype,
            "max_num_batched_tokens": plan.max_num_batched_tokens,
            "max_num_seqs": plan.max_num_seqs,
            "disable_hybrid_kv_cache_manager": plan.disable_hybrid_kv_cache_manager,
            "num_gpu_blocks_override": plan.kv.num_gpu_blocks_override,
            "speculative_config": (
                dict(plan.serving.speculative_config.raw) if plan.serving.speculative_config else None
            ),
        },
        "draft_layers": list(plan.layout.draft_layers),
        "block_size": plan.block_size,
        "block_size_source": plan.layout.block_size_note,
        "num_blocks": plan.num_blocks,
        "usable_blocks": plan.usable_blocks,
        "null_block": 1,
        "kv_cache_tokens": plan.kv_cache_tokens,
        "max_concurrency": {
            "tokens_per_request": plan.tokens_per_request,
            "x": plan.max_concurrency,
            "blocks_per_request": cap.blocks_per_request if cap else None,
        },
        "max_model_len": {
            "value": plan.max_model_len,
            "requested": plan.kv.requested_max_model_len,
            "fits": fit.fits,
            "needed_bytes": fit.needed_bytes,
            "available_bytes": fit.available_bytes,
            "limiting_stage": fit.stage,
            "estimated_max": fit.estimated_max_model_len,
            "error": fit.error,
        },
        "vllm_starts": plan.refusal is None,
        "refusal": plan.refusal,
        "log_lines": list(plan.log_lines),
        "stages": stages,
        "kv_cache_groups": [_group(g) for g in plan.groups],
        "layers": [_layer(row) for row in plan.layers],
        "memory": memory,
        "notes": list(plan.all_notes),
    }
