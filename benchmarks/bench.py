"""kvplan's speed targets, measured on this machine in one run.

(a) ``kvplan plan <preset> --gpu H100-80GB`` end to end, as a ratio to
    ``python -c "import typer, rich.console, yaml"`` (target: at most 1.5x);
(b) the planner core (``planner.plan``) for a 128-layer hybrid model at PP=8
    (target: under 5 ms);
(c) a sweep over 1,000 configurations (target: under 2 s).

Usage::

    python benchmarks/bench.py [--runs N] [--preset NAME] [--json]

Every timing is a median.  Subprocesses use this interpreter
(``sys.executable``).  Before timing, the package's bytecode is compiled, as
``pip install`` does, so an environment with ``PYTHONDONTWRITEBYTECODE`` does
not time the compiler.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.5
TARGET_CORE_MS = 5.0
TARGET_SWEEP_S = 2.0
GiB = 1 << 30


def _wall(argv: list[str]) -> float:
    """Seconds one subprocess takes, start to exit; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    return elapsed


def startup_ratio(preset: str, runs: int) -> dict[str, Any]:
    """(a): medians of ``runs`` interleaved runs of the plan and of the bare imports."""
    baseline = [sys.executable, "-c", "import typer, rich.console, yaml"]
    plan = [sys.executable, "-m", "kvplan", "plan", preset, "--gpu", "H100-80GB"]
    _wall(baseline)  # warm the file cache
    _wall(plan)
    base_times, plan_times = [], []
    for _ in range(runs):
        base_times.append(_wall(baseline))
        plan_times.append(_wall(plan))
    base_ms = statistics.median(base_times) * 1000
    plan_ms = statistics.median(plan_times) * 1000
    return {
        "command": " ".join(["kvplan", *plan[3:]]),
        "runs": runs,
        "imports_ms": round(base_ms, 1),
        "plan_ms": round(plan_ms, 1),
        "ratio": round(plan_ms / base_ms, 2),
        "target": TARGET_RATIO,
        "ok": plan_ms / base_ms <= TARGET_RATIO,
    }


def hybrid_request(num_layers: int = 128, pp: int = 8) -> Any:
    """A 128-layer hybrid: three sliding-window layers to one full-attention layer, PP=8.

    Shaped like Gemma 3 on one rank: 8 KV heads of 256, bfloat16, window 1024,
    block size 16; 20 GiB of KV cache memory on every stage.
    """
    from kvplan.releases import resolve_release
    from kvplan.vllm.planner import PlanRequest
    from kvplan.vllm.specs import FullAttentionSpec, KVCacheSpec, SlidingWindowSpec

    specs: dict[str, KVCacheSpec] = {}
    for i in range(num_layers):
        name = f"model.layers.{i}.self_attn.attn"
        if i % 4 == 3:
            specs[name] = FullAttentionSpec(block_size=16, num_kv_heads=8, head_size=256, dtype="bfloat16")
        else:
            specs[name] = SlidingWindowSpec(
                block_size=16, num_kv_heads=8, head_size=256, dtype="bfloat16", sliding_window=1024
            )
    names = list(specs)
    per_stage = num_layers // pp
    stages = [{n: specs[n] for n in names[i * per_stage : (i + 1) * per_stage]} for i in range(pp)]
    return PlanRequest(
        stage_specs=stages,
        available=[20 * GiB] * pp,
        release=resolve_release(None),
        max_model_len=131072,
        max_num_batched_tokens=8192,
    )


def _median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def planner_core(runs: int) -> dict[str, Any]:
    """(b): the median time of ``planner.plan`` on the 128-layer hybrid at PP=8."""
    from kvplan.vllm.planner import plan

    request = hybrid_request()
    result = plan(request)
    ms = _median_seconds(lambda: plan(request), runs) * 1000
    return {
        "model": "128 layers, 3 sliding-window : 1 full, PP=8",
        "groups": len(result.groups),
        "num_blocks": result.num_blocks,
        "runs": runs,
        "core_ms": round(ms, 3),
        "target": TARGET_CORE_MS,
        "ok": ms < TARGET_CORE_MS,
    }


# 5 TP x 4 PP x 5 GPUs x 2 KV dtypes x 5 block sizes = 1,000 configurations.
SWEEP_AXES: dict[str, list[Any]] = {
    "tp": [1, 2, 4, 8, 16],
    "pp": [1, 2, 4, 8],
    "gpu": ["H100-80GB", "H200", "A100-80GB", "L40S", "B200"],
    "kv_cache_dtype": ["auto", "fp8"],
    "block_size": [16, 32, 64, 128, 256],
}


def sweep_time(preset: str, runs: int) -> dict[str, Any]:
    """(c): the median time of a 1,000-configuration sweep, model resolved once."""
    from kvplan.inputs.models import resolve_model
    from kvplan.inputs.serving import Serving

    model = resolve_model(preset)
    base = Serving(max_model_len=8192)
    combos = 1
    for values in SWEEP_AXES.values():
        combos *= len(values)

    if importlib.util.find_spec("kvplan.workflows.sweep") is not None:
        from kvplan.workflows import sweep

        axes = {axis: SWEEP_AXES.get(axis, [getattr(base, axis)]) for axis in sweep.AXES}
        via = "kvplan.workflows.sweep.sweep"

        def run() -> int:
            result = sweep.sweep(model, base, axes, sweep.Target())
            return len(result.rows) + len(result.invalid)

    else:  # the planner loop a sweep runs: one description, one Serving per combination
        import itertools

        from kvplan import api
        from kvplan.errors import KvplanError
        from kvplan.model.describe import describe
        from kvplan.releases import resolve_release

        via = "kvplan.api.plan_with"

        def run() -> int:
            description = describe(model, resolve_release(None))
            count = 0
            for values in itertools.product(*SWEEP_AXES.values()):
                options = dataclasses.replace(base, **dict(zip(SWEEP_AXES, values, strict=True)))
                try:
                    api.plan_with(model, options, description)
                except KvplanError:
                    pass
                count += 1
            return count

    planned = run()
    seconds = _median_seconds(run, runs)
    return {
        "model": preset,
        "configurations": combos,
        "planned": planned,
        "via": via,
        "runs": runs,
        "sweep_s": round(seconds, 3),
        "target": TARGET_SWEEP_S,
        "ok": seconds < TARGET_SWEEP_S,
    }


def compile_package() -> None:
    """Write kvplan's bytecode, as an installed package has it."""
    import kvplan

    compileall.compile_dir(str(Path(kvplan.__file__).parent), quiet=1)


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print a table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per median (at least 10)")
    parser.add_argument("--preset", default="llama-3.1-8b", help="model preset for (a) and (c)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    runs = max(args.runs, 10)
    compile_package()
    figures = {
        "python": sys.version.split()[0],
        "startup": startup_ratio(args.preset, runs),
        "core": planner_core(runs * 20),
        "sweep": sweep_time(args.preset, max(runs // 3, 3)),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    s, c, w = figures["startup"], figures["core"], figures["sweep"]
    rows = [
        (
            f"(a) {s['command']}",
            f"{s['plan_ms']:.1f} ms / {s['imports_ms']:.1f} ms = {s['ratio']:.2f}x",
            f"<= {TARGET_RATIO}x",
            s["ok"],
        ),
        (f"(b) planner core, {c['model']}", f"{c['core_ms']:.3f} ms", f"< {TARGET_CORE_MS:g} ms", c["ok"]),
        (
            f"(c) sweep, {w['configurations']:,} configurations of {w['model']}",
            f"{w['sweep_s']:.3f} s",
            f"< {TARGET_SWEEP_S:g} s",
            w["ok"],
        ),
    ]
    width = max(len(r[0]) for r in rows)
    valw = max(len(r[1]) for r in rows)
    print(f"kvplan benchmark (Python {figures['python']}, medians; (a) over {s['runs']} runs each)")
    print(f"{'measure':<{width}}  {'median':<{valw}}  {'target':<9}  ok")
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:<{valw}}  {target:<9}  {'yes' if ok else 'NO'}")
    print(f'(a) baseline: python -c "import typer, rich.console, yaml"; (c) via {w["via"]}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
