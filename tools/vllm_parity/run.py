"""Regenerates tests/parity/fixtures/vllm-<ver>.json from vLLM's own planner.

    python tools/vllm_parity/run.py                       # every release below
    python tools/vllm_parity/run.py --versions 0.19.1,0.33.0
    python tools/vllm_parity/run.py --versions 0.33.0 --only dense-llama31-8b-tp1

For each release it creates (or reuses) a virtual environment under
``--venv-root`` (default /work/parity-venvs):

* ``_base``: torch==2.13.0 plus the small pure-Python packages that vLLM's
  config and planner modules import (BASE_PACKAGES), shared by every release
  through a ``.pth`` file;
* ``<ver>``: the release's wheel installed with ``--no-deps``.  Packages a
  release needs on top of the base are installed into its own environment
  on first import failure and listed in the fixture's ``environment``.

Then it runs worker.py inside that environment; the worker writes the fixture.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENARIOS = REPO / "tests" / "parity" / "scenarios.json"
FIXTURES = REPO / "tests" / "parity" / "fixtures"

RELEASES = (
    "0.10.2 0.11.0 0.11.1 0.12.0 0.13.0 0.14.0 0.15.0 0.16.0 0.17.0 0.18.0 0.19.1 "
    "0.20.0 0.20.1 0.23.0 0.24.0 0.26.0 0.27.0 0.28.0 0.29.0 0.30.0 0.31.0 0.32.0 0.33.0"
).split()

TORCH = "torch==2.13.0"
# What `import vllm.config` and `import vllm.v1.core.kv_cache_utils` need, found by
# importing them; nothing heavy (no CUDA packages, no serving stack).
BASE_PACKAGES = [
    "numpy",
    "packaging",
    "pydantic",
    "regex",
    "cbor2",
    "huggingface_hub",
    "safetensors",
    "transformers",
    "gguf",
    "aiohttp",
    "psutil",
    "pyzmq",
    "pillow",
    "pybase64",
    "cachetools",
    "msgspec",
    "cloudpickle",
    "uvloop",
    "py-cpuinfo",
    "prometheus_client",
    "openai-harmony",
    "openai",
    "llguidance",
    "diskcache",
    "xgrammar",
    "pyyaml",
]
# import name -> distribution name, for packages found missing at import time
IMPORT_TO_DIST = {
    "yaml": "pyyaml",
    "cv2": "opencv-python-headless",
    "zmq": "pyzmq",
    "google": "protobuf",
    "cpuinfo": "py-cpuinfo",
    "PIL": "pillow",
    "pythonjsonlogger": "python-json-logger",
    "sklearn": "scikit-learn",
}
PROBE_MODULES = ["vllm.config", "vllm.v1.core.kv_cache_utils", "vllm.v1.kv_cache_interface"]


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def pip(python: Path, *args: str, cache: Path) -> None:
    res = sh(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--cache-dir",
            str(cache),
            *args,
        ]
    )
    if res.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{res.stderr[-2000:]}")


def site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


def ensure_base(root: Path) -> Path:
    base = root / "_base"
    marker = base / ".parity-ready"
    if marker.exists():
        return base
    if not base.exists():
        sh([sys.executable, "-m", "venv", str(base)]).check_returncode()
    py = base / "bin" / "python"
    pip(py, TORCH, cache=root / ".pipcache")
    pip(py, *BASE_PACKAGES, cache=root / ".pipcache")
    check = sh([str(py), "-c", "import torch; print(torch.__version__)"])
    if not check.stdout.startswith("2.13.0"):
        raise RuntimeError(f"base environment has torch {check.stdout!r}, wanted 2.13.0")
    marker.write_text("ok\n")
    return base


def wheel_for(version: str, wheel_dir: Path) -> Path:
    hits = sorted(glob.glob(str(wheel_dir / f"vllm-{version}-*.whl")))
    if not hits:
        raise FileNotFoundError(f"no wheel for vllm {version} in {wheel_dir}")
    return Path(hits[0])


def ensure_release(root: Path, base: Path, version: str, wheel_dir: Path) -> tuple[Path, list[str]]:
    """The release's environment and the extra packages it needed."""
    venv = root / version
    extras_file = venv / ".parity-extras.json"
    py = venv / "bin" / "python"
    if not (venv / ".parity-ready").exists():
        if not venv.exists():
            sh([sys.executable, "-m", "venv", str(venv)]).check_returncode()
        (site_packages(venv) / "_parity_base.pth").write_text(f"{site_packages(base)}\n")
        pip(py, "--no-deps", str(wheel_for(version, wheel_dir)), cache=root / ".pipcache")
        (venv / ".parity-ready").write_text("ok\n")
    extras: list[str] = json.loads(extras_file.read_text()) if extras_file.exists() else []
    for _ in range(20):
        probe = sh([str(py), "-c", "import sys\nfor m in sys.argv[1:]: __import__(m)", *PROBE_MODULES])
        missing = re.findall(r"No module named '([^'.]+)", probe.stderr)
        if probe.returncode == 0 or not missing:
            break
        dist = IMPORT_TO_DIST.get(missing[-1], missing[-1])
        if dist in extras:
            break  # installing did not help; the worker will report the error
        print(f"  [{version}] installing missing package {dist}", flush=True)
        pip(py, dist, cache=root / ".pipcache")
        extras.append(dist)
    extras_file.write_text(json.dumps(extras))
    return venv, extras


def run_release(version: str, args: argparse.Namespace, base: Path) -> dict:
    started = time.time()
    venv, extras = ensure_release(args.venv_root, base, version, args.wheel_dir)
    out = FIXTURES / f"vllm-{version}.json"
    tmp = out.with_suffix(".json.tmp")
    cmd = [str(venv / "bin" / "python"), str(HERE / "worker.py"), str(args.scenarios), str(tmp)]
    if args.only:
        cmd += ["--only", args.only]
    res = sh(cmd, timeout=args.timeout)
    if res.returncode != 0 or not tmp.exists():
        return {"version": version, "ok": False, "stderr": res.stderr[-3000:]}
    fixture = json.loads(tmp.read_text())
    tmp.unlink()
    fixture["environment"] = {
        "wheel": wheel_for(version, args.wheel_dir).name,
        "base_packages": BASE_PACKAGES,
        "extra_packages": extras,
        "stubs": [],
    }
    if args.only and out.exists():
        old = json.loads(out.read_text())
        old["results"].update(fixture["results"])
        fixture["results"] = old["results"]
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    statuses: dict[str, int] = {}
    for r in fixture["results"].values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"version": version, "ok": True, "statuses": statuses, "seconds": round(time.time() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", default=",".join(RELEASES))
    parser.add_argument("--only", default="", help="comma-separated scenario ids")
    parser.add_argument("--scenarios", type=Path, default=SCENARIOS)
    parser.add_argument("--venv-root", type=Path, default=Path("/work/parity-venvs"))
    parser.add_argument("--wheel-dir", type=Path, default=Path("/work/vllm-wheels"))
    parser.add_argument("--timeout", type=int, default=900)
    args = parser.parse_args()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    args.venv_root.mkdir(parents=True, exist_ok=True)
    base = ensure_base(args.venv_root)
    failed = 0
    for version in [v.strip() for v in args.versions.split(",") if v.strip()]:
        try:
            summary = run_release(version, args, base)
        except Exception as exc:  # noqa: BLE001 - one release never stops the rest
            summary = {"version": version, "ok": False, "stderr": f"{type(exc).__name__}: {exc}"}
        failed += not summary["ok"]
        print(json.dumps(summary), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
