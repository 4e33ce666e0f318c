"""Run vLLM's own code on the oracle cases and write one fixture per release.

    python tools/vllm_oracle/run.py --versions 0.33.0,0.19.1
    python tools/vllm_oracle/run.py --versions 0.33.0 --only llama-3.1-8b-tp1
    python tools/vllm_oracle/run.py --write-cases          # regenerate cases.json

For each release: create (once) its environment (venvs.py), run kvplan/workflows/vllm_meta.py
inside it on tests/oracle/cases.json, and write
tests/oracle/fixtures/vllm-<version>.json in the compact form described in
README.md.  The raw output of vllm_meta.py is kept next to the venvs
(``<venv-root>/<version>/last-run.json``) for debugging.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# The model builder kvplan verify also runs (one file, standalone inside a vLLM environment).
META_BUILD = REPO / "kvplan" / "workflows" / "vllm_meta.py"
sys.path.insert(0, str(HERE))

import venvs  # noqa: E402

ORACLE = REPO / "tests" / "oracle"
CONFIGS = ORACLE / "configs"
CASES = ORACLE / "cases.json"
FIXTURES = ORACLE / "fixtures"
GIB = 1024**3

# The preset configs whose model is too large for anything below 8 GPUs,
# and those that need 4.
TP8 = {"deepseek-r1", "deepseek-v3", "kimi-k2", "qwen3-235b-a22b", "qwen3.5-397b-a17b", "llama-4-scout"}
TP4 = {"llama-3.1-70b", "llama-3.3-70b", "gpt-oss-120b", "qwen3-next-80b-a3b"}
PP2 = [
    "llama-3.1-8b",
    "qwen3-8b",
    "gemma-3-27b",
    "gpt-oss-20b",
    "deepseek-v2-lite",
    "qwen3-next-80b-a3b",
    "nemotron-h-8b",
]
MLA = ["deepseek-r1", "deepseek-v2-lite", "deepseek-v3", "kimi-k2"]


def _heads(name: str) -> int | None:
    cfg = json.loads((CONFIGS / name / "config.json").read_text())
    text = cfg.get("text_config", cfg)
    return text.get("num_attention_heads")


def _case(
    name: str,
    tp: int = 1,
    pp: int = 1,
    cap: str = "9.0",
    mem: float = 20,
    args: dict | None = None,
    suffix: str = "",
) -> dict:
    cid = (
        f"{name}-tp{tp}"
        + (f"-pp{pp}" if pp > 1 else "")
        + (f"-sm{cap.replace('.', '')}" if cap != "9.0" else "")
    )
    return {
        "id": cid + suffix,
        "config": name,
        "args": args or {},
        "capability": cap,
        "tp": tp,
        "pp": pp,
        "memory_per_worker_bytes": int(mem * GIB),
    }


def default_cases() -> list[dict]:
    names = sorted(p.name for p in CONFIGS.iterdir() if (p / "config.json").exists())
    cases: dict[str, dict] = {}

    def add(c: dict) -> None:
        cases.setdefault(c["id"], c)

    for name in names:
        add(_case(name))
        heads = _heads(name)
        tp = 8 if name in TP8 else 4 if name in TP4 else 2
        while heads and heads % tp:
            tp *= 2
        add(_case(name, tp=tp))
    for name in PP2:
        add(_case(name, pp=2))
    for tp in (1, 2, 4, 8):
        for pp in (1, 2, 4):
            add(_case("llama-3.1-8b", tp=tp, pp=pp))
            if tp * pp > 8:
                # One node has 8 GPUs: vLLM refuses the plain case; this one
                # says the world spans several nodes.
                nodes = tp * pp // 8
                add(_case("llama-3.1-8b", tp=tp, pp=pp, args={"nnodes": nodes}, suffix=f"-nnodes{nodes}"))
    for name in MLA:
        for cap in ("8.0", "10.0"):
            add(_case(name, cap=cap))
    # Gated delta nets pick their prefill kernel (and so whether they export checkpoints) by GPU.
    for cap in ("8.0", "10.0"):
        add(_case("qwen3-next-80b-a3b", tp=4, cap=cap))
    # Long context on little memory: the planner refuses (fit failure).
    add(_case("llama-3.1-8b", mem=4, suffix="-mem4g"))
    return list(cases.values())


def write_cases() -> None:
    ORACLE.mkdir(parents=True, exist_ok=True)
    CASES.write_text(json.dumps({"cases": default_cases()}, indent=1) + "\n")


def _meta_cases(cases: list[dict]) -> list[dict]:
    out = []
    for c in cases:
        c = dict(c)
        c["config_dir"] = str(CONFIGS / c.pop("config"))
        out.append(c)
    return out


# ---------------------------------------------------------------- compaction
def _key(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


class SpecTable:
    """Each distinct spec once; cases refer to specs by key."""

    def __init__(self) -> None:
        self.specs: dict[str, dict] = {}

    def ref(self, spec: dict) -> str:
        k = _key(spec)
        self.specs.setdefault(k, spec)
        return k


# Errors that come from the CPU stand-ins, not from vLLM: compiled code the
# harness cannot run, and FlashInfer, which the environments do not install.
GAP_MARKERS = ("the CPU stand-in", "libcudart is not loaded")


def _is_harness_gap(err: dict | None) -> bool:
    if not err:
        return False
    msg = f"{err.get('message', '')} {err.get('traceback_tail', '')}"
    return any(m in msg for m in GAP_MARKERS) or ("FLASHINFER" in msg and "ImportError" in msg)


def compact_case(case: dict, raw: dict, table: SpecTable) -> dict:
    status = raw.get("status")
    if status in ("build_error", "config_error") and _is_harness_gap(raw.get("error")):
        status = "harness_gap"
    res: dict = {
        "status": status,
        "inputs": {
            k: case[k] for k in ("config", "args", "capability", "tp", "pp", "memory_per_worker_bytes")
        },
        "seconds": raw.get("seconds"),
        "peak_rss_mib": raw.get("peak_rss_mib"),
    }
    if "error" in raw:
        err = dict(raw["error"])
        err.pop("traceback_tail", None) if err.get("where") else None
        res["error"] = err
    if "config" in raw:
        res["config"] = raw["config"]
    if "executor" in raw:
        res["executor"] = raw["executor"]
    stages = []
    for st in raw.get("stages", []):
        names = list(st["specs"])
        refs = [table.ref(st["specs"][n]) for n in names]
        backends: dict[str, list[str]] = {}
        for layer, b in st.get("backends", {}).items():
            backends.setdefault(str(b), []).append(layer)
        stages.append(
            {
                "pp_rank": st["pp_rank"],
                "tp_rank": st["tp_rank"],
                "layers": st.get("layers"),
                "model_class": st.get("model_class"),
                "runner": st.get("runner"),
                "runner_attributes_from_config": st.get("runner_attributes_from_config"),
                "kv_cache_spec": {"layers": names, "spec": refs},
                "kv_sharing": st.get("kv_sharing") or {},
                "attention_backends": {b: len(v) for b, v in backends.items()},
                "attention_backend_layers": {b: v for b, v in backends.items()}
                if len(backends) > 1
                else None,
                "kv_cache_layouts": st.get("kv_cache_layouts"),
                "cache_after_load": st.get("cache_after_load"),
                "bytes": st.get("bytes"),
                "seconds_build": st.get("seconds_build"),
            }
        )
    if stages:
        res["stages"] = stages
    planner = raw.get("planner")
    if planner is not None:
        if "error" in planner:
            err = dict(planner["error"])
            err.pop("traceback_tail", None)
            res["planner"] = {"error": err, "log": planner.get("log", [])}
        else:
            workers = []
            for w in planner.get("workers", []):
                w = dict(w)
                groups = []
                for g in w.pop("kv_cache_groups"):
                    g = dict(g)
                    g["spec"] = table.ref(g["spec"])
                    groups.append(g)
                w["kv_cache_groups"] = groups
                workers.append(w)
            p = {k: v for k, v in planner.items() if k != "workers"}
            p["workers"] = workers
            res["planner"] = p
    res["log"] = raw.get("log", [])
    for k in ("standins_used", "meta_value_reads"):
        if raw.get(k):
            res[k] = raw[k]
    if raw.get("warnings"):
        res["warnings"] = raw["warnings"]
    return res


def compact(raw: dict, cases: list[dict], env: dict) -> dict:
    table = SpecTable()
    by_id = {c["id"]: c for c in cases}
    results = {}
    for cid, r in raw["results"].items():
        results[cid] = compact_case(by_id[cid], r, table)
    groups = raw.get("groups", {})
    return {
        "schema": 1,
        "vllm_version": env["versions"].get("vllm"),
        "environment": {
            "wheel": env["wheel"],
            "python": raw["environment"]["python"],
            "versions": raw["environment"]["versions"],
            "requirements": env["requirements"],
            "not_installed": env["skipped"],
        },
        "gpus": {cap: g["gpu"] for cap, g in groups.items()},
        "standins": {cap: g["standins"] for cap, g in groups.items()},
        "import_seconds": {cap: g["import_seconds"] for cap, g in groups.items()},
        "specs": table.specs,
        "results": results,
    }


def run_release(version: str, args: argparse.Namespace, cases: list[dict]) -> dict:
    started = time.time()
    env = venvs.ensure_release(args.venv_root, version, args.wheel_dir, args.pip_cache)
    venv = args.venv_root / version
    if args.recompact:
        return write_fixture(version, args, cases, env, venv / "last-run.json", started)
    tmp_cases = venv / "cases.json"
    tmp_cases.write_text(json.dumps({"cases": _meta_cases(cases)}))
    raw_out = venv / "last-run.json"
    cmd = [
        str(venv / "bin" / "python"),
        str(META_BUILD),
        str(tmp_cases),
        str(raw_out),
        "--timeout",
        str(args.case_timeout),
    ]
    scratch = args.pip_cache.parent / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    env_vars = {"ORACLE_SCRATCH": str(scratch), "PATH": "/usr/bin:/bin", "HOME": str(scratch)}
    with open(venv / "last-run.log", "w") as log:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env_vars)
    if res.returncode != 0 or not raw_out.exists():
        return {"version": version, "ok": False, "log": str(venv / "last-run.log")}
    return write_fixture(version, args, cases, env, raw_out, started)


def write_fixture(
    version: str, args: argparse.Namespace, cases: list[dict], env: dict, raw_out: Path, started: float
) -> dict:
    raw = json.loads(raw_out.read_text())
    known = {c["id"] for c in cases}
    raw["results"] = {k: v for k, v in raw["results"].items() if k in known}
    fixture = compact(raw, cases, env)
    out = FIXTURES / f"vllm-{version}.json"
    if args.only and out.exists():
        old = json.loads(out.read_text())
        old["specs"].update(fixture["specs"])
        old["results"].update(fixture["results"])
        for k in ("gpus", "standins", "import_seconds"):
            old[k].update(fixture[k])
        old["environment"] = fixture["environment"]
        fixture = old
        # drop specs nobody refers to any more
    FIXTURES.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, indent=None, separators=(",", ":")) + "\n")
    statuses: dict[str, int] = {}
    for r in fixture["results"].values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "version": version,
        "ok": True,
        "statuses": statuses,
        "seconds": round(time.time() - started, 1),
        "bytes": out.stat().st_size,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", default="0.33.0,0.19.1")
    ap.add_argument("--only", default="", help="comma-separated case ids")
    ap.add_argument("--write-cases", action="store_true")
    ap.add_argument(
        "--recompact",
        action="store_true",
        help="rewrite the fixtures from each venv's last-run.json without running vLLM",
    )
    ap.add_argument("--venv-root", type=Path, default=Path("/work/oracle-venvs"))
    ap.add_argument("--wheel-dir", type=Path, default=Path("/work/vllm-wheels"))
    ap.add_argument("--pip-cache", type=Path, default=Path("/work/oracle-cache/pip"))
    ap.add_argument("--case-timeout", type=int, default=900)
    args = ap.parse_args()
    if args.write_cases or not CASES.exists():
        write_cases()
    cases = json.loads(CASES.read_text())["cases"]
    only = {s for s in args.only.split(",") if s}
    if only:
        cases = [c for c in cases if c["id"] in only]
    failed = 0
    for version in [v.strip() for v in args.versions.split(",") if v.strip()]:
        try:
            summary = run_release(version, args, cases)
        except Exception as exc:  # noqa: BLE001 - one release never stops the rest
            summary = {"version": version, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        failed += not summary["ok"]
        print(json.dumps(summary), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
