"""Writes tests/parity/kvplan_scenarios.json: scenarios built from kvplan's OWN derived specs.

vLLM's planner is then run on exactly the per-layer specs kvplan derives for
real models (``run.py``), and the tests check that kvplan's plan of the same
model equals vLLM's.  Rerun after changing a family derivation:

    python tools/vllm_parity/export_kvplan.py
    python tools/vllm_parity/run.py --scenarios tests/parity/kvplan_scenarios.json --only <ids>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kvplan import api  # noqa: E402
from kvplan.vllm.specs import (  # noqa: E402
    AttentionSpec,
    ChunkedLocalAttentionSpec,
    FullAttentionSpec,
    KVCacheSpec,
    MambaSpec,
    MLAAttentionSpec,
    SlidingWindowSpec,
)

OUT = ROOT / "tests" / "parity" / "kvplan_scenarios.json"

# (model, flags): the models the attention-families work names, at TP 8 with 40 GiB.
MODELS: list[tuple[str, dict[str, Any]]] = [
    ("gemma-3-27b", {"tp": 8, "kv_cache_memory": "40GiB"}),
    ("gpt-oss-120b", {"tp": 8, "kv_cache_memory": "40GiB"}),
    ("deepseek-v3", {"tp": 8, "kv_cache_memory": "40GiB"}),
    ("llama-4-scout", {"tp": 8, "kv_cache_memory": "40GiB"}),
    ("llama-4-scout", {"tp": 8, "kv_cache_memory": "40GiB", "max_model_len": 131072}),
    ("qwen3-next-80b-a3b", {"tp": 8, "kv_cache_memory": "40GiB"}),
    ("qwen3-next-80b-a3b", {"tp": 8, "kv_cache_memory": "40GiB", "vllm_version": "0.19.1"}),
    ("nemotron-h-8b", {"kv_cache_memory": "40GiB", "vllm_version": "0.19.1"}),
    ("gemma-3-27b", {"tp": 4, "pp": 2, "kv_cache_memory": "40GiB,30GiB"}),
    ("qwen3.5-397b-a17b", {"tp": 8, "kv_cache_memory": "40GiB"}),
]


def scenario_id(model: str, flags: dict[str, Any]) -> str:
    """A stable id naming the model and the flags."""
    parts = [f"{k}{v}".replace(",", "-").replace(".", "_") for k, v in sorted(flags.items())]
    return "kvplan-" + model + "-" + "-".join(parts)


def layer_json(spec: KVCacheSpec) -> dict[str, Any]:
    """A kvplan spec in the scenario format."""
    out: dict[str, Any] = {"block_size": spec.block_size}
    if isinstance(spec, MambaSpec):
        out.update(
            type="mamba",
            shapes=[list(s) for s in spec.shapes],
            dtypes=list(spec.dtypes),
            mamba_type=spec.mamba_type,
        )
        if spec.page_size_padded:
            out["page_size_padded"] = spec.page_size_padded
        return out
    assert isinstance(spec, AttentionSpec)
    out.update(num_kv_heads=spec.num_kv_heads, head_size=spec.head_size, dtype=spec.dtype)
    if spec.page_size_padded:
        out["page_size_padded"] = spec.page_size_padded
    if isinstance(spec, MLAAttentionSpec):
        out.update(type="mla", cache_dtype_str=spec.cache_dtype_str)
    elif isinstance(spec, FullAttentionSpec):
        out["type"] = "full"
        for name in ("head_size_v", "sliding_window", "attention_chunk_size"):
            if getattr(spec, name) is not None:
                out[name] = getattr(spec, name)
    elif isinstance(spec, SlidingWindowSpec):
        out.update(type="sliding_window", sliding_window=spec.sliding_window)
    elif isinstance(spec, ChunkedLocalAttentionSpec):
        out.update(type="chunked_local", attention_chunk_size=spec.attention_chunk_size)
    return out


def build(model: str, flags: dict[str, Any]) -> dict[str, Any]:
    """One scenario: kvplan's per-stage specs and memory for ``model`` under ``flags``."""
    r = api.plan(model, **flags)
    req_disable = r.serving.disable_hybrid_kv_cache_manager
    disable = (
        req_disable
        if req_disable is not None
        else any(layer.kind == "chunked_local" for layer in r.description.layers)
    )
    return {
        "id": scenario_id(model, flags),
        "description": f"kvplan's own derivation of {model} with {flags} (vLLM {r.release.version} specs)",
        "max_model_len": r.max_model_len,
        "max_num_batched_tokens": r.max_num_batched_tokens,
        "max_num_seqs": r.max_num_seqs,
        "num_gpu_blocks_override": None,
        "disable_hybrid_kv_cache_manager": disable,
        "dcp": r.serving.dcp,
        "tp": r.serving.tp,
        "async_scheduling": True,
        "mamba_cache_mode": r.layout.mamba_cache_mode,
        "kvplan": {"model": model, "flags": flags},
        "workers": [
            {"available_memory": avail, "layers": {n: layer_json(s) for n, s in specs.items()}}
            for avail, specs in zip(r.memory.available, r.layout.stage_specs, strict=True)
        ],
    }


def main() -> None:
    data = {"schema": 1, "scenarios": [build(m, f) for m, f in MODELS]}
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(",".join(s["id"] for s in data["scenarios"]))


if __name__ == "__main__":
    main()
