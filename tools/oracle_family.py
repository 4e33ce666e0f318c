"""Run vLLM's own model code (the meta-device oracle) on one family's cases and
keep vLLM's answers as a compact fixture.

    python tools/oracle_family.py multimodal --version 0.33.0 \
        --oracle kvplan/workflows/vllm_meta.py --python /work/oracle-venvs/0.33.0/bin/python

Reads ``tests/oracle/cases/<family>.json`` (cases name a folder under
``tests/oracle/configs``), runs ``kvplan/workflows/vllm_meta.py`` in the release's environment
and writes ``tests/oracle/fixtures/<family>/vllm-<version>.json``: per case the
status, vLLM's error where it refused, the architecture it built, the
resolved max_model_len and, per pipeline stage, every KV cache layer with its
spec (each distinct spec stored once).  ``--only`` reruns some cases and
merges them into the existing fixture.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORACLE = REPO / "tests" / "oracle"

# The spec fields kept: what decides a layer's cache and its page.
SPEC_FIELDS = (
    "class",
    "block_size",
    "num_kv_heads",
    "head_size",
    "head_size_v",
    "dtype",
    "sliding_window",
    "attention_chunk_size",
    "page_size_padded",
    "page_size_bytes",
    "shapes",
    "dtypes",
    "mamba_type",
    "cache_dtype_str",
)


def _spec(raw: dict) -> dict:
    return {k: raw[k] for k in SPEC_FIELDS if k in raw}


def _key(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


def compact(raw: dict) -> tuple[dict, dict]:
    """One case's result and the specs it refers to."""
    specs: dict[str, dict] = {}
    out: dict = {"status": raw.get("status")}
    err = raw.get("error")
    if err:
        out["error"] = {k: err.get(k) for k in ("stage", "type", "message", "where")}
    cfg = raw.get("config") or {}
    for src, dst in (
        ("model_config.architecture", "architecture"),
        ("model_config.max_model_len", "max_model_len"),
        ("model_config.dtype", "dtype"),
    ):
        if src in cfg:
            out[dst] = cfg[src]
    stages = []
    for st in raw.get("stages", []):
        names = list(st.get("specs", {}))
        keys = []
        for name in names:
            spec = _spec(st["specs"][name])
            k = _key(spec)
            specs[k] = spec
            keys.append(k)
        stages.append({"pp_rank": st.get("pp_rank"), "layers": names, "spec": keys})
    if stages:
        out["stages"] = stages
    planner = raw.get("planner") or {}
    if "error" in planner:
        out["planner_error"] = planner["error"].get("message")
    return out, specs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family")
    ap.add_argument("--version", required=True)
    ap.add_argument("--python", required=True, help="the release environment's python")
    ap.add_argument("--oracle", required=True, help="path of kvplan/workflows/vllm_meta.py")
    ap.add_argument("--only", default="", help="comma-separated case ids")
    ap.add_argument("--timeout", default="600")
    args = ap.parse_args()
    cases = json.loads((ORACLE / "cases" / f"{args.family}.json").read_text())["cases"]
    known = {c["id"] for c in cases}
    only = {c for c in args.only.split(",") if c}
    if only:
        cases = [c for c in cases if c["id"] in only]
    meta = []
    for c in cases:
        c = dict(c)
        c["config_dir"] = str(ORACLE / "configs" / c.pop("config"))
        meta.append(c)
    with tempfile.TemporaryDirectory() as tmp:
        cases_path = Path(tmp) / "cases.json"
        out_path = Path(tmp) / "out.json"
        cases_path.write_text(json.dumps({"cases": meta}))
        cmd = [args.python, args.oracle, str(cases_path), str(out_path), "--timeout", args.timeout]
        res = subprocess.run(cmd, stdout=sys.stderr, check=False)
        if res.returncode != 0 or not out_path.exists():
            print(f"oracle failed ({res.returncode})", file=sys.stderr)
            return 1
        raw = json.loads(out_path.read_text())
    fixture_path = ORACLE / "fixtures" / args.family / f"vllm-{args.version}.json"
    fixture = {"schema": 1, "vllm_version": args.version, "specs": {}, "results": {}}
    if only and fixture_path.exists():
        fixture = json.loads(fixture_path.read_text())
    for cid, result in raw["results"].items():
        out, specs = compact(result)
        fixture["results"][cid] = out
        fixture["specs"].update(specs)
    fixture["results"] = {cid: r for cid, r in fixture["results"].items() if cid in known}
    used = {k for r in fixture["results"].values() for st in r.get("stages", []) for k in st["spec"]}
    fixture["specs"] = {k: v for k, v in sorted(fixture["specs"].items()) if k in used}
    fixture["results"] = dict(sorted(fixture["results"].items()))
    fixture_path.parent.mkdir(parents=True, exist_ok=True)
    fixture_path.write_text(json.dumps(fixture, indent=None, separators=(",", ":")) + "\n")
    statuses: dict[str, int] = {}
    for r in fixture["results"].values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    print(json.dumps({"fixture": str(fixture_path.relative_to(REPO)), "statuses": statuses}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
