"""kvplan's speed goals, measured on this machine in one run.

(a) ``kvplan plan <preset> --gpu H100-80GB`` end to end, as a ratio to
    ``python -c "import typer, rich.console, yaml"`` (goal: at most 1.3x);
(b) the planner core (``planner.plan``) for a 128-layer hybrid model at PP=8
    (goal: under 5 ms);
(c) ``kvplan sweep`` over 1,000 configurations, end to end through the CLI with
    ``--gpu`` and table output (goal: under 2 s);
(d) the same over 10,000 configurations (goal: under 10 s).

Each line prints the figure, its goal and their ratio (at most 1.00 meets
it).  Usage::

    python benchmarks/bench.py [--runs N] [--preset NAME] [--json]

Every timing is a median of wall-clock times; the CPU time of (a) is printed
too, as a check on a machine other work is loading.  Subprocesses use this
interpreter (``sys.executable``).  Before timing, the package's bytecode is
compiled, as ``pip install`` does, so an environment with
``PYTHONDONTWRITEBYTECODE`` does not time the compiler.
"""

from __future__ import annotations

import argparse
import compileall
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.3
TARGET_CORE_MS = 5.0
TARGET_SWEEP_S = 2.0
TARGET_SWEEP_10K_S = 10.0
GiB = 1 << 30


def _run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one subprocess, start to exit; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def startup_ratio(preset: str, runs: int) -> dict[str, Any]:
    """(a): medians of ``runs`` interleaved runs of the plan and of the bare imports."""
    baseline = [sys.executable, "-c", "import typer, rich.console, yaml"]
    plan = [sys.executable, "-m", "kvplan", "plan", preset, "--gpu", "H100-80GB"]
    _run(baseline)  # warm the file cache
    _run(plan)
    base, planned = [], []
    for _ in range(runs):
        base.append(_run(baseline))
        planned.append(_run(plan))
    base_ms = statistics.median(w for w, _ in base) * 1000
    plan_ms = statistics.median(w for w, _ in planned) * 1000
    base_cpu = statistics.median(c for _, c in base) * 1000
    plan_cpu = statistics.median(c for _, c in planned) * 1000
    return {
        "command": " ".join(["kvplan", *plan[3:]]),
        "runs": runs,
        "imports_ms": round(base_ms, 1),
        "plan_ms": round(plan_ms, 1),
        "ratio": round(plan_ms / base_ms, 2),
        "cpu_ratio": round(plan_cpu / base_cpu, 2) if base_cpu else None,
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


# 5 TP x 4 PP x 5 GPUs x 2 KV dtypes x 5 block sizes = 1,000 configurations; ten
# max_model_len values on top make 10,000.
SWEEP_AXES: dict[str, list[str]] = {
    "--tp": ["1", "2", "4", "8", "16"],
    "--pp": ["1", "2", "4", "8"],
    "--gpu": ["H100-80GB", "H200", "A100-80GB", "L40S", "B200"],
    "--kv-cache-dtype": ["auto", "fp8"],
    "--block-size": ["16", "32", "64", "128", "256"],
}
LENGTHS = ["4096", "8192", "12288", "16384", "20480", "24576", "28672", "32768", "65536", "131072"]


def sweep_command(preset: str, with_lengths: bool) -> tuple[list[str], int]:
    """The ``kvplan sweep`` command line and the number of configurations it plans."""
    argv = [sys.executable, "-m", "kvplan", "sweep", preset]
    count = 1
    axes = dict(SWEEP_AXES, **({"--max-model-len": LENGTHS} if with_lengths else {}))
    for flag, values in axes.items():
        argv += [flag, ",".join(values)]
        count *= len(values)
    return argv, count


def sweep_time(preset: str, runs: int, with_lengths: bool, target: float) -> dict[str, Any]:
    """(c) / (d): the median wall time of the sweep, end to end through the CLI, table output."""
    argv, count = sweep_command(preset, with_lengths)
    times = [_run(argv) for _ in range(runs)]
    seconds = statistics.median(w for w, _ in times)
    return {
        "command": " ".join(["kvplan", *argv[3:]]),
        "configurations": count,
        "runs": runs,
        "sweep_s": round(seconds, 3),
        "cpu_s": round(statistics.median(c for _, c in times), 3),
        "target": target,
        "ok": seconds < target,
    }


def compile_package() -> None:
    """Write kvplan's bytecode, as an installed package has it."""
    import kvplan

    compileall.compile_dir(str(Path(kvplan.__file__).parent), quiet=1)


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print each with its goal (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per median of (a) (at least 10)")
    parser.add_argument("--preset", default="llama-3.1-8b", help="model preset for (a), (c) and (d)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    runs = max(args.runs, 10)
    compile_package()
    figures = {
        "python": sys.version.split()[0],
        "startup": startup_ratio(args.preset, runs),
        "core": planner_core(runs * 20),
        "sweep": sweep_time(args.preset, 3, False, TARGET_SWEEP_S),
        "sweep_10k": sweep_time(args.preset, 1, True, TARGET_SWEEP_10K_S),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    s, c, w, t = figures["startup"], figures["core"], figures["sweep"], figures["sweep_10k"]
    rows = [
        (
            f"(a) {s['command']}",
            f"{s['plan_ms']:.1f} ms / {s['imports_ms']:.1f} ms = {s['ratio']:.2f}x",
            f"<= {TARGET_RATIO}x",
            s["ratio"] / TARGET_RATIO,
        ),
        (f"(b) planner core, {c['model']}", f"{c['core_ms']:.3f} ms", f"< {TARGET_CORE_MS:g} ms",
         c["core_ms"] / TARGET_CORE_MS),
        (f"(c) kvplan sweep, {w['configurations']:,} configurations", f"{w['sweep_s']:.2f} s",
         f"< {TARGET_SWEEP_S:g} s", w["sweep_s"] / TARGET_SWEEP_S),
        (f"(d) kvplan sweep, {t['configurations']:,} configurations", f"{t['sweep_s']:.2f} s",
         f"< {TARGET_SWEEP_10K_S:g} s", t["sweep_s"] / TARGET_SWEEP_10K_S),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    valw = max(len(r[1]) for r in rows)
    print(f"kvplan benchmark (Python {figures['python']}, medians of wall-clock time)")
    print(f"{'measure':<{width}}  {'measured':<{valw}}  {'goal':<9}  vs goal")
    for name, value, goal, ratio in rows:
        verdict = "meets it" if ratio <= 1 else "misses it"
        print(f"{name:<{width}}  {value:<{valw}}  {goal:<9}  {ratio:.2f} ({verdict})")
    print(
        f'(a) baseline: python -c "import typer, rich.console, yaml", {s["runs"]} interleaved runs each; '
        f"CPU-time ratio {s['cpu_ratio']}x"
    )
    print(f"(c) {w['command']}; CPU {w['cpu_s']:.2f} s")
    print(f"(d) the same with --max-model-len {','.join(LENGTHS)}; CPU {t['cpu_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
