"""``kvplan verify``: run vLLM's own code on the user's machine and hold kvplan's plan against it.

Where vLLM and torch are installed, the same meta-device build the test
fixtures come from (``vllm_meta.py``, beside this module) runs in a
subprocess: vLLM's own ``EngineArgs`` resolve the config, vLLM's model is
built on the ``meta`` device (nothing allocated, no GPU needed) and vLLM's
own planner plans the KV cache.  kvplan's per-layer specs, resolved values,
plan and weights are then compared with vLLM's, field by field.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from dataclasses import field
from pathlib import Path
from typing import Any

from kvplan.api import Plan
from kvplan.errors import KvplanError, NoDeviceError
from kvplan.records import record
from kvplan.vllm.specs import KVCacheSpec, MambaSpec

META_BUILD = Path(__file__).with_name("vllm_meta.py")
# The compute capabilities the meta-device build can stand in for, by GPU architecture.
CAPABILITY = {"ampere": "8.0", "ada": "8.9", "hopper": "9.0", "blackwell": "10.0"}
_KINDS = {
    "FullAttentionSpec": "full",
    "SlidingWindowSpec": "sliding_window",
    "ChunkedLocalAttentionSpec": "chunked_local",
    "MLAAttentionSpec": "mla",
    "MambaSpec": "mamba",
    "SinkFullAttentionSpec": "sink_full",
    "CrossAttentionSpec": "cross_attention",
}
# vLLM 0.2x+ names Mamba backends by enum member, older releases by string.
_MAMBA_TYPES = {
    "MAMBA1": "mamba1",
    "MAMBA2": "mamba2",
    "SHORT_CONV": "short_conv",
    "LINEAR": "linear_attention",
    "GDN_ATTN": "gdn_attention",
}
# kvplan's serving options that are vLLM engine arguments of the same name.
_ENGINE_ARGS = (
    "max_model_len",
    "kv_cache_dtype",
    "block_size",
    "max_num_batched_tokens",
    "max_num_seqs",
    "enforce_eager",
    "num_gpu_blocks_override",
    "quantization",
    "dtype",
)
WEIGHT_TOLERANCE = 0.005  # kvplan's weights are counted from the config; within 0.5% is agreement


class VllmMissing(NoDeviceError):
    """vLLM or torch is not importable here (exit code 3, like a missing device)."""


@record(frozen=True)
class Row:
    """One compared figure: what kvplan says, what vLLM says, and whether they agree."""

    what: str
    kvplan: str
    vllm: str
    same: bool


@record(eq=False)
class Verification:
    """Every compared figure of one plan, and vLLM's environment."""

    rows: list[Row] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def differences(self) -> list[Row]:
        """The rows where kvplan and vLLM disagree."""
        return [r for r in self.rows if not r.same]

    def add(self, what: str, mine: Any, theirs: Any, same: bool | None = None) -> None:
        """Record one figure; equal values agree unless ``same`` says otherwise."""
        self.rows.append(Row(what, _text(mine), _text(theirs), mine == theirs if same is None else same))


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def vllm_available() -> None:
    """Raise ``VllmMissing`` unless vLLM and torch are importable in this environment."""
    missing = [name for name in ("vllm", "torch") if importlib.util.find_spec(name) is None]
    if missing:
        raise VllmMissing(
            f"kvplan verify runs vLLM's own code, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed here: pip install vllm"
        )


def vllm_layer(spec: dict[str, Any]) -> dict[str, Any]:
    """The fields of one of vLLM's layer specs that kvplan models, in kvplan's names."""
    # 0.10 has no MLAAttentionSpec: its MLA layers are FullAttentionSpec(use_mla=True).
    kind = "mla" if spec.get("use_mla") else _KINDS.get(spec["class"], spec["class"])
    out: dict[str, Any] = {
        "kind": kind,
        "block_size": spec["block_size"],
        "page_size_bytes": spec["page_size_bytes"],
    }
    if kind == "mamba":
        out.update(
            shapes=[list(s) for s in spec["shapes"]],
            dtypes=list(spec["dtypes"]),
            mamba_type=_MAMBA_TYPES.get(spec["mamba_type"], spec["mamba_type"]),
            num_speculative_blocks=spec.get("num_speculative_blocks", 0),
            # The prefill checkpoint block (vLLM 0.29+) and its alignment (0.30+); none before.
            num_prefill_checkpoint_blocks=spec.get("num_prefill_checkpoint_blocks", 0),
            prefill_checkpoint_alignment=spec.get("prefill_checkpoint_alignment"),
        )
        return out
    out.update(
        num_kv_heads=spec.get("num_kv_heads"),
        head_size=spec.get("head_size"),
        # Releases without a separate V head size have V as wide as K.
        head_size_v=spec.get("head_size_v") or spec.get("head_size"),
        dtype=spec.get("dtype"),
    )
    for name in ("sliding_window", "attention_chunk_size", "sink_len"):
        if spec.get(name) is not None:
            out[name] = spec[name]
    return out


def kvplan_layer(spec: KVCacheSpec) -> dict[str, Any]:
    """The same fields of one of kvplan's layer specs."""
    out: dict[str, Any] = {
        "kind": spec.kind,
        "block_size": spec.block_size,
        "page_size_bytes": spec.page_size_bytes,
    }
    if isinstance(spec, MambaSpec):
        out.update(
            shapes=[list(s) for s in spec.shapes],
            dtypes=list(spec.dtypes),
            mamba_type=spec.mamba_type,
            num_speculative_blocks=spec.num_speculative_blocks,
            num_prefill_checkpoint_blocks=spec.num_prefill_checkpoint_blocks,
            prefill_checkpoint_alignment=spec.prefill_checkpoint_alignment,
        )
        return out
    out.update(
        num_kv_heads=getattr(spec, "num_kv_heads", None),
        head_size=getattr(spec, "head_size", None),
        head_size_v=getattr(spec, "head_size_v", None) or getattr(spec, "head_size", None),
        dtype=getattr(spec, "dtype", None),
    )
    for name in ("sliding_window", "attention_chunk_size", "sink_len"):
        if getattr(spec, name, None) is not None:
            out[name] = getattr(spec, name)
    return out


def capability(plan: Plan) -> str:
    """The compute capability vLLM's build stands in for: the GPU preset's, else an H100's."""
    if plan.serving.gpu is None:
        return CAPABILITY["hopper"]
    from kvplan.inputs.presets import find_gpu

    gpu = find_gpu(plan.serving.gpu)
    if gpu.arch not in CAPABILITY:
        raise KvplanError(
            f"vLLM's meta-device build stands in only for {', '.join(sorted(CAPABILITY))} GPUs, "
            f"not {gpu.name} ({gpu.arch})",
            hint="verify with --gpu H100-80GB, A100-80GB, L40S or B200",
        )
    return CAPABILITY[gpu.arch]


def case_for(plan: Plan, config_dir: Path) -> dict[str, Any]:
    """The meta-device build's case for this plan: the same config, arguments and memory."""
    args = {
        name: getattr(plan.serving, name)
        for name in _ENGINE_ARGS
        if getattr(plan.serving, name, None) not in (None, False, "auto")
    }
    if args.get("max_model_len") == -1:
        args.pop("max_model_len")
    return {
        "id": "verify",
        "config_dir": str(config_dir),
        "args": args,
        "capability": capability(plan),
        "tp": plan.serving.tp,
        "pp": plan.serving.pp,
        "memory_per_worker_bytes": min(st.available_bytes for st in plan.stages),
    }


def run_vllm(plan: Plan, timeout: float = 900) -> dict[str, Any]:
    """vLLM's own answer for this plan's model and serving setup (one case of the meta-device build)."""
    vllm_available()
    with tempfile.TemporaryDirectory(prefix="kvplan-verify-") as tmp:
        folder = Path(tmp)
        config_dir = plan.model.directory
        if config_dir is None or not (config_dir / "config.json").is_file():
            # A preset or a YAML: vLLM reads the same keys from a config.json of their own.
            config_dir = folder / "model"
            config_dir.mkdir()
            (config_dir / "config.json").write_text(json.dumps(plan.model.config))
        cases = folder / "cases.json"
        cases.write_text(json.dumps({"cases": [case_for(plan, config_dir)]}))
        out = folder / "out.json"
        done = subprocess.run(
            [sys.executable, str(META_BUILD), str(cases), str(out), "--timeout", str(timeout)],
            capture_output=True,
            text=True,
            timeout=timeout + 120,
            check=False,
        )
        if not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise KvplanError(f"vLLM's meta-device build failed: {tail[0]}")
        raw = json.loads(out.read_text())
    result = raw["results"]["verify"]
    result["environment"] = raw.get("environment", {})
    return result


def compare(plan: Plan, vllm: dict[str, Any]) -> Verification:
    """kvplan's plan against vLLM's own answer, figure by figure."""
    out = Verification(environment=vllm.get("environment", {}))
    status = vllm.get("status")
    if status == "config_error":
        out.add("vLLM's config", "accepted", f"refused: {vllm['error']['message']}", same=False)
        return out
    if status not in ("ok", "planner_error"):
        error = vllm.get("error") or {}
        raise KvplanError(f"vLLM's meta-device build did not finish: {error.get('message', status)}")
    out.add("pipeline stages", len(plan.stages), len(vllm["stages"]))
    for stage in vllm["stages"]:
        rank = stage["pp_rank"]
        if rank >= len(plan.stages):
            continue
        theirs = {name: vllm_layer(spec) for name, spec in stage["specs"].items()}
        mine = {name: kvplan_layer(spec) for name, spec in plan.layout.stage_specs[rank].items()}
        out.add(f"stage {rank}: KV cache layers", len(mine), len(theirs), same=list(mine) == list(theirs))
        for name in dict.fromkeys([*theirs, *mine]):
            if mine.get(name) != theirs.get(name):
                out.add(
                    f"stage {rank}: {name}", mine.get(name, "absent"), theirs.get(name, "absent"), same=False
                )
        if not any(r.what.startswith(f"stage {rank}: ") and not r.same for r in out.rows):
            kinds = sorted({(s["kind"], s["block_size"], s["page_size_bytes"]) for s in mine.values()})
            out.add(
                f"stage {rank}: every layer's spec", f"{len(mine)} equal ({kinds})", "the same", same=True
            )
        weights = _kvplan_weights(plan, rank)
        theirs_bytes = int(stage.get("bytes", {}).get("total", 0))
        if weights is not None and theirs_bytes:
            close = abs(weights - theirs_bytes) <= WEIGHT_TOLERANCE * theirs_bytes
            out.add(f"stage {rank}: weights on one rank (bytes)", weights, theirs_bytes, same=close)
    cfg = vllm.get("config", {})
    out.add("max_model_len", plan.max_model_len, cfg.get("model_config.max_model_len"))
    out.add(
        "max_num_batched_tokens",
        plan.max_num_batched_tokens,
        cfg.get("scheduler_config.max_num_batched_tokens"),
    )
    out.add("max_num_seqs", plan.max_num_seqs, cfg.get("scheduler_config.max_num_seqs"))
    out.add("async scheduling", plan.engine.async_scheduling, cfg.get("scheduler_config.async_scheduling"))
    if "use_v2_model_runner" in cfg:
        out.add("V2 model runner", plan.engine.v2_model_runner, cfg["use_v2_model_runner"])
    if "max_concurrent_batches" in cfg:
        out.add("concurrent batches", plan.engine.max_concurrent_batches, cfg["max_concurrent_batches"])
    out.add("Mamba cache mode", plan.layout.mamba_cache_mode, cfg.get("cache_config.mamba_cache_mode"))
    planner = vllm.get("planner") or {}
    if planner.get("error"):
        out.add("vLLM starts", plan.fit.fits, False)
        out.add("vLLM's error", plan.fit.error, planner["error"]["message"])
        return out
    if planner.get("workers"):
        out.add("num_blocks", plan.num_blocks, planner["workers"][0]["num_blocks"])
        capacity = planner.get("capacity") or {}
        lines = [line.split(" ", 1)[1] for line in vllm.get("log", [])]
        out.add("capacity log", " | ".join(plan.log_lines), " | ".join(lines))
        if capacity.get("max_concurrency") is not None and plan.max_concurrency is not None:
            same = abs(plan.max_concurrency - capacity["max_concurrency"]) < 1e-9
            out.add(
                "max concurrency", f"{plan.max_concurrency:.4f}x", f"{capacity['max_concurrency']:.4f}x", same
            )
    return out


def _kvplan_weights(plan: Plan, rank: int) -> int | None:
    """kvplan's weight bytes on one rank of a stage, counted even when the KV memory was given."""
    from kvplan.memory.weights import stage_weight_bytes

    start, end = plan.layout.ranges[rank]
    return stage_weight_bytes(plan.description, plan.serving, rank, start, end, plan.model.directory).bytes
