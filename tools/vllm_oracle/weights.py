"""vLLM's weight bytes per rank for the quantization and expert-parallel cases.

    python tools/vllm_oracle/weights.py --version 0.33.0            # run and write the fixture
    python tools/vllm_oracle/weights.py --version 0.33.0 --only ID,ID
    python tools/vllm_oracle/weights.py --version 0.33.0 --raw RAW.json   # compact an existing run

Runs kvplan/workflows/vllm_meta.py (in the release's environment, under the machine-wide
lock ``/work/oracle.lock`` so that one build runs at a time) on
tests/oracle/cases/weights.json and writes
tests/oracle/fixtures/weights/vllm-<version>.json: per case the status, the
inputs, the quantization method vLLM resolved, and per stage the bytes the
rank keeps after loading (total and by dtype); a failed case keeps vLLM's
error type and message.  Nothing else (no specs, no planner).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ORACLE = REPO / "tests" / "oracle"
CASES = ORACLE / "cases" / "weights.json"
FIXTURES = ORACLE / "fixtures" / "weights"
LOCK = Path("/work/oracle.lock")


def meta_cases(cases: list[dict]) -> list[dict]:
    out = []
    for c in cases:
        c = dict(c)
        c["config_dir"] = str(ORACLE / "configs" / c.pop("config"))
        out.append(c)
    return out


def compact_case(case: dict, raw: dict) -> dict:
    out: dict = {"status": raw["status"], "inputs": {k: v for k, v in case.items() if k != "id"}}
    config = raw.get("config") or {}
    if config:
        out["quantization"] = config.get("model_config.quantization")
        out["dtype"] = config.get("model_config.dtype")
    if "error" in raw:
        err = raw["error"]
        out["error"] = {"stage": err.get("stage"), "type": err.get("type"), "message": err.get("message")}
    stages = []
    for st in raw.get("stages", []):
        row = {"pp_rank": st["pp_rank"], "tp_rank": st["tp_rank"]}
        if st.get("dp_rank"):
            row["dp_rank"] = st["dp_rank"]
        row["layers"] = st.get("layers")
        row["bytes"] = {"total": st["bytes"]["total"], "by_dtype": st["bytes"]["by_dtype"]}
        stages.append(row)
    if stages:
        out["stages"] = stages
    return out


# Statuses that are vLLM's answer (a build, or vLLM's own refusal of the config); a
# build_error / crash / timeout is the harness failing and is reported, not stored.
ANSWERS = ("ok", "config_error", "planner_error")


def compact(raw: dict, cases: list[dict]) -> dict:
    by_id = {c["id"]: c for c in cases}
    results = {}
    for cid, r in sorted(raw["results"].items()):
        if r["status"] in ANSWERS:
            results[cid] = compact_case(by_id[cid], r)
        else:
            err = r.get("error", {})
            print(
                f"{cid}: {r['status']} (not stored): {err.get('type')}: {str(err.get('message'))[:200]} "
                f"at {err.get('where')}",
                file=sys.stderr,
            )
    return {
        "schema": 1,
        "vllm_version": raw["environment"]["versions"].get("vllm"),
        "environment": raw["environment"],
        "gpus": {cap: g["gpu"] for cap, g in raw.get("groups", {}).items()},
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default="0.33.0")
    ap.add_argument("--venv-root", type=Path, default=Path("/work/oracle-venvs"))
    ap.add_argument("--only", default="")
    ap.add_argument("--raw", type=Path, help="compact this vllm_meta.py output instead of running")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args(argv)
    cases = json.loads(CASES.read_text())["cases"]
    only = {s for s in a.only.split(",") if s}
    if only:
        cases = [c for c in cases if c["id"] in only]
    if a.raw is None:
        with tempfile.TemporaryDirectory(prefix="oracle-weights-") as tmp:
            case_file, raw_file = Path(tmp) / "cases.json", Path(tmp) / "raw.json"
            case_file.write_text(json.dumps({"cases": meta_cases(cases)}))
            python = a.venv_root / a.version / "bin" / "python"
            cmd = [
                "flock",
                str(LOCK),
                str(python),
                str(REPO / "kvplan" / "workflows" / "vllm_meta.py"),
                str(case_file),
                str(raw_file),
                "--timeout",
                str(a.timeout),
            ]
            env = dict(os.environ, ORACLE_SCRATCH=tmp)
            subprocess.run(cmd, check=True, env=env)
            raw = json.loads(raw_file.read_text())
    else:
        raw = json.loads(a.raw.read_text())
        raw["results"] = {k: v for k, v in raw["results"].items() if not only or k in only}
    fixture = compact(raw, cases)
    out = FIXTURES / f"vllm-{a.version}.json"
    if out.exists() and (only or a.raw is not None):
        old = json.loads(out.read_text())
        old["results"].update(fixture["results"])
        old["gpus"].update(fixture["gpus"])
        old["results"] = dict(sorted(old["results"].items()))
        fixture = old
    FIXTURES.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    statuses: dict[str, int] = {}
    for r in fixture["results"].values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    print(json.dumps({"fixture": str(out.relative_to(REPO)), "statuses": statuses}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
