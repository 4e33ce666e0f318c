"""Predicted vs measured "Available KV cache memory" for published vLLM startups.

Two sets, kept apart:

- fitted (benchmarks/data/memory_cases.yaml): llm-d's H100 measurements and two
  vLLM issues. kvplan's empirical constants (the PyTorch-sort sampler bytes, the
  hidden-state bytes, the non-torch figures) were fitted on the llm-d ones, so
  these errors are in-sample.
- held-out (benchmarks/data/heldout_cases.yaml): public startup logs no constant
  was fitted on, each citing its source and the inputs the log shows. kvplan is
  asked with those inputs only (the plan: block), never with the log's figures.

For every case the table shows the measured and predicted KV cache memory (GiB)
and the error; for the held-out set also the release, GPU, quantization and the
weights kvplan counts beside "Model loading took". The note lists the median
absolute errors, the held-out coverage and the worst five held-out cases with
their causes.

    python benchmarks/memory_accuracy.py [--markdown]

Exit status 1 when the held-out median exceeds 0.5 GiB or the held-out set
covers fewer than 15 cases, 5 releases, 4 GPU types or 3 quantization methods.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from kvplan import api
from kvplan.inputs.models import resolve_model

GiB = 1 << 30
DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent

# ---- fitted set ----------------------------------------------------------------------------

# Which kvplan preset plays each measured checkpoint, and what differs from it.
MODELS: dict[str, tuple[str, dict[str, Any], str]] = {
    "openai/gpt-oss-20b": ("gpt-oss-20b", {}, ""),
    "openai/gpt-oss-120b": ("gpt-oss-120b", {}, ""),
    "meta-llama/Llama-3.1-8B-Instruct": ("llama-3.1-8b", {}, ""),
    "Qwen/Qwen3-0.6B": ("qwen3-0.6b", {}, ""),
    "Qwen/Qwen3-32B": ("qwen3-32b", {}, ""),
    # quantization_config of https://huggingface.co/RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic
    # (compressed-tensors, FP8 weights with per-channel scales, lm_head kept in 16 bits).
    "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic": (
        "llama-3.3-70b",
        {
            "quantization_config": {
                "quant_method": "compressed-tensors",
                "format": "float-quantized",
                "ignore": ["lm_head"],
                "config_groups": {
                    "group_0": {
                        "targets": ["Linear"],
                        "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
                        "input_activations": {"num_bits": 8, "type": "float", "dynamic": True},
                    }
                },
            }
        },
        "FP8 config added to the llama-3.3-70b preset",
    ),
    "mistralai/Mistral-Small-3.2-24B-Instruct-2506": (
        "mistral-small-24b",
        {},
        "multimodal checkpoint: its profile run peaked at 2.12 GiB of activation, kvplan models the text "
        "model's sampler warm-up (the 2501 preset) and does not count the vision encoder",
    ),
}

# Releases for cases that do not state one: the vLLM image current at the source's date.
RELEASE_BY_DATE = {
    "llmd": "0.15",  # vllm/vllm-openai:latest in Jan-Feb 2026
    "vllm-issue23278": "0.10",  # Aug 2025
    "vllm-issue27508": "0.11.0",  # Oct 2025
}
GPU_BY_NAME = {"H100": "H100-80GB"}
# The source's summary row lists utilization 0.9 for gpt-oss-120b, but its own terms add up only
# at 0.95: 0.95 x 79.18 - 64.38 - 7.38 - 0.13 = 3.33 GiB, the KV cache it reports (0.9 gives -0.63).
CASE_NOTES = {
    "vllm-issue23278-gpt-oss-120b-h100": "Marlin mxfp4 on Hopper before 0.12 (the log: 65.97 GiB of weights)",
    "vllm-issue27508-gpt-oss-120b-h100-mnbt1024": "Marlin mxfp4 weights, as in #23278",
}
UTILIZATION_FIX = {"llmd-gpt-oss-120b-h100": 0.95}


@dataclass(frozen=True)
class Row:
    """One compared case."""

    case: str
    label: str
    measured: float
    predicted: float
    note: str
    release: str = ""
    gpu: str = ""
    quantization: str = ""
    tp: int = 1
    weights: str = ""
    source: str = ""

    @property
    def error(self) -> float:
        """Predicted minus measured (GiB)."""
        return self.predicted - self.measured


def _release_for(case: dict[str, Any]) -> str | None:
    if case.get("vllm_version"):
        return str(case["vllm_version"])
    for prefix, version in RELEASE_BY_DATE.items():
        if case["id"].startswith(prefix):
            return version
    return None


def _fitted_usable(case: dict[str, Any]) -> str | None:
    if case.get("available_kv_gib") is None:
        return "no available KV cache figure"
    if case["model"] not in MODELS:
        return "no preset for the model"
    if case.get("gpu") not in GPU_BY_NAME:
        return f"GPU {case.get('gpu')} (V0 engine or no preset)"
    return None


def fitted_rows() -> tuple[list[Row], list[tuple[str, str]]]:
    """The fitted set's rows and the cases it skips (with why)."""
    rows, skipped = [], []
    for case in yaml.safe_load((DATA / "memory_cases.yaml").read_text()):
        reason = _fitted_usable(case)
        if reason:
            skipped.append((case["id"], reason))
            continue
        preset, extra, note = MODELS[case["model"]]
        model = resolve_model(preset)
        if extra:
            model = replace(model, config={**model.config, **extra})
        flags = {
            "tp": case.get("tp") or 1,
            "pp": case.get("pp") or 1,
            "gpu": GPU_BY_NAME[case["gpu"]],
            "gpu_memory_utilization": UTILIZATION_FIX.get(case["id"], case.get("gpu_memory_utilization")),
            "max_model_len": case.get("max_model_len"),
            "max_num_batched_tokens": case.get("max_num_batched_tokens"),
            "max_num_seqs": case.get("max_num_seqs"),
            "enforce_eager": case.get("enforce_eager") or None,
            "vllm_version": _release_for(case),
        }
        plan = api.plan(model, **flags)
        note = "; ".join(n for n in (note, CASE_NOTES.get(case["id"], "")) if n)
        if case["id"] in UTILIZATION_FIX:
            note = (note + "; " if note else "") + "utilization 0.95: the source's terms add up only there"
        rows.append(
            Row(
                case["id"],
                case["model"],
                float(case["available_kv_gib"]),
                min(plan.memory.available) / GiB,
                note,
                release=plan.release.version,
                tp=case.get("tp") or 1,
            )
        )
    return rows, skipped


# ---- held-out set --------------------------------------------------------------------------

# Why the worst held-out cases miss: read from the logs' own terms and the vLLM code.
CAUSES = {
    "guardkit-gb10-qwen3.5-35b-a3b-fp8-u0.80": (
        "GB10 unified memory and a multimodal hybrid: weights agree (34.13 vs 34.22 GiB logged), but "
        "0.8 x 121.63 - 34.22 - 55.72 leaves 7.4 GiB of other non-KV use where kvplan counts 1.1; the "
        "vision encoder's profile (not modelled) and host RAM read through psutil, which other containers "
        "on the same machine move"
    ),
    "guardkit-gb10-qwen2.5-14b-fp8-dynamic-u0.15-fail": (
        "GB10 unified memory: weights agree (15.21 vs 15.22 GiB), yet the same model and flags imply 4.3 GiB "
        "of non-KV use here and 3.0 GiB at utilization 0.40 on the same host; free memory is the host's "
        "available RAM (psutil), which other processes changed between the two starts"
    ),
    "guardkit-gb10-qwen3-30b-a3b-fp8-u0.30": (
        "GB10 unified memory: weights agree (29.04 vs 29.04 GiB); the other 3.4 GiB of non-KV use the log "
        "implies (kvplan 1.5) is host RAM seen through psutil"
    ),
    "guardkit-gb10-qwen2.5-14b-fp8-dynamic-u0.40": (
        "GB10 unified memory: weights agree; 3.0 GiB of other non-KV use implied against kvplan's 1.5"
    ),
    "h200-qwen3-next-80b-a3b-tp2-0.10.2": (
        "non-torch memory: the log's Free-memory line shows 1.38 GiB where kvplan takes 0.55 (measured at "
        "TP 2 on a later release); 0.10.x snapshots before distributed init, so NCCL's setup counts; weights "
        "(74.37 vs 74.28) and activation (5.58 vs 5.58) agree"
    ),
    "dennislee-gpt-oss-120b-a100-80gb-tp4-u0.8-0.10.1.1": (
        "TP 4 across nodes over Ray: NCCL and the network transport hold more non-torch memory than the "
        "0.55 GiB measured on one node; weights agree (17.20 vs 17.22 GiB, Marlin layout)"
    ),
    "dennislee-qwen2-7b-a100-80gb-tp2-u0.5-0.10.1.1": (
        "non-torch memory at TP 2 before 0.11 (snapshot before distributed init); weights agree (7.10 vs 7.12 GiB)"
    ),
    "vllm-pr51590-gpt-oss-120b-rtx-pro-4500-tp8": (
        "weights: the reporter's table gives 9.98 GiB per rank, kvplan's Marlin MXFP4 layout for compute "
        "12.0 gives 8.63; the MoE backend vLLM 0.28 picks on that GPU and its padding are not known here"
    ),
}


def _source(case: dict[str, Any]) -> str:
    src = case["source"]
    if src.get("url"):
        return str(src["url"])
    return f"code-index file {src.get('index_id')}"


def _gpu_label(plan: dict[str, Any]) -> str:
    if plan.get("gpu"):
        return str(plan["gpu"])
    return f"{plan.get('gpu_memory')} GPU (name not logged)"


def heldout_rows() -> tuple[list[Row], list[tuple[str, str]]]:
    """The held-out rows, and the cases left out with the reason."""
    rows, excluded = [], []
    for case in yaml.safe_load((DATA / "heldout_cases.yaml").read_text()):
        if case.get("excluded"):
            excluded.append((case["id"], str(case["excluded"])))
            continue
        flags = dict(case["plan"])
        model_arg = flags.pop("model")
        model = str(REPO / model_arg) if "/" in model_arg else model_arg
        plan = api.plan(model, **flags)
        weights = next(t for t in plan.memory.stages[0].terms if t.name == "weights")
        logged = case.get("figures", {}).get("weights_gib")
        w = f"{-weights.bytes / GiB:.2f}" + (f" (log {logged:.2f})" if logged is not None else "")
        quant = plan.description.config.get("quantization_config")
        method = (quant or {}).get("quant_method") if isinstance(quant, dict) else None
        shown = case.get("inputs_shown", {})
        rows.append(
            Row(
                case["id"],
                str(shown.get("model", model_arg)),
                float(case["measured_available_gib"]),
                min(plan.memory.available) / GiB,
                str(case.get("measured_from", "")),
                release=plan.release.version,
                gpu=_gpu_label(case["plan"]),
                quantization=str(method or flags.get("quantization") or "none"),
                tp=int(flags.get("tp", 1)),
                weights=w,
                source=_source(case),
            )
        )
    return rows, excluded


def _median(rows: list[Row]) -> float:
    return statistics.median(abs(r.error) for r in rows) if rows else 0.0


def main(argv: list[str]) -> int:
    """Print both tables; exit 1 when the held-out set misses its bar."""
    fitted, skipped = fitted_rows()
    held, excluded = heldout_rows()
    print("## Fitted set (kvplan's empirical constants were fitted on the llm-d cases: in-sample)\n")
    print("| case | model | TP | release | measured GiB | predicted GiB | error GiB | note |")
    print("|---|---|---:|---|---:|---:|---:|---|")
    for r in fitted:
        print(
            f"| {r.case} | {r.label} | {r.tp} | {r.release} | {r.measured:.2f} | {r.predicted:.2f} "
            f"| {r.error:+.2f} | {r.note} |"
        )
    print(f"\nfitted: median absolute error {_median(fitted):.2f} GiB over {len(fitted)} cases\n")
    print("## Held-out set (public logs no constant was fitted on)\n")
    print(
        "| case | source | model | release | GPU | TP | quantization | weights GiB (log) "
        "| measured GiB | predicted GiB | error GiB |"
    )
    print("|---|---|---|---|---|---:|---|---|---:|---:|---:|")
    for r in held:
        print(
            f"| {r.case} | {r.source} | {r.label} | {r.release} | {r.gpu} | {r.tp} | {r.quantization} "
            f"| {r.weights} | {r.measured:.2f} | {r.predicted:.2f} | {r.error:+.2f} |"
        )
    releases = sorted({r.release for r in held})
    gpus = sorted({r.gpu for r in held})
    methods = sorted({r.quantization for r in held} - {"none"})
    median = _median(held)
    print(f"\nheld-out: median absolute error {median:.2f} GiB over {len(held)} cases")
    print(f"releases ({len(releases)}): {', '.join(releases)}")
    print(f"GPU types ({len(gpus)}): {', '.join(gpus)}")
    print(f"quantization methods ({len(methods)}): {', '.join(methods)}")
    print("\nworst five held-out cases:")
    for r in sorted(held, key=lambda r: -abs(r.error))[:5]:
        print(f"- {r.case}: {r.error:+.2f} GiB. {CAUSES.get(r.case, 'cause not analysed')}")
    if excluded:
        print("\nleft out of the held-out set:")
        for case_id, reason in excluded:
            print(f"- {case_id}: {reason}")
    if "--markdown" not in argv:
        for case_id, reason in skipped:
            print(f"skipped (fitted set) {case_id}: {reason}")
    ok = median <= 0.5 and len(held) >= 15 and len(releases) >= 5 and len(gpus) >= 4 and len(methods) >= 3
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
