"""Private CPU environments for running a vLLM release's own code.

Layout under the venv root (default /work/oracle-venvs):

* ``_base``: torch==2.13.0 (CPU build), triton and torchvision, shared by every release
  through a ``.pth`` file, so the 1.8 GB of torch exist once;
* ``<version>``: the release's wheel installed with ``--no-deps``, then the
  release's own ``Requires-Dist`` entries (read from the wheel's METADATA)
  minus everything that is CUDA-only or would replace torch (SKIP), with
  torch/triton pinned by a constraints file.  Where the release's range lets
  pip pick a transformers it was never released against, TRANSFORMERS pins
  the one it was (see the README).

Nothing here imports vLLM; it only drives pip.
"""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

TORCH = "torch==2.13.0"
TRITON = "triton==3.8.0"
# torchvision of the same torch release, for the multimodal model modules'
# imports; --no-deps so that it cannot pull another torch.  Its compiled ops
# cannot load beside the CPU torch; kvplan/workflows/vllm_meta.py copes with that.
TORCHVISION = "torchvision==0.28.0"

# Distributions never installed: CUDA kernels and runtimes, torch companions
# that would pull another torch, the Ray cluster stack, and GPU-only helpers.
SKIP = {
    "torch",
    "torchaudio",
    "torchvision",
    "torchcodec",
    "xformers",
    "flashinfer-python",
    "flashinfer-cubin",
    "flashinfer-jit-cache",
    "ray",
    "cupy-cuda12x",
    "quack-kernels",
    "tilelang",
    "apache-tvm-ffi",
    "humming-kernels",
    "tokenspeed-mla",
    "pynvvideocodec",
    "fastsafetensors",
    "instanttensor",
    "nvtx",
    "deep-gemm",
    "triton",
    "intel-extension-for-pytorch",
}
SKIP_PREFIXES = ("nvidia-",)

# transformers each release is run with: the newest of the line that was
# current when the release came out, inside the release's declared range.
# The others (the first releases of architectures): the newest patch of the minor line
# whose latest release came out before the vLLM release (PyPI upload dates).
TRANSFORMERS = {
    "0.10.0": "transformers==4.53.3",
    "0.10.1": "transformers==4.55.4",
    "0.10.2": "transformers==4.56.2",
    "0.11.0": "transformers==4.57.1",
    "0.11.1": "transformers==4.57.6",
    "0.12.0": "transformers==4.57.6",
    "0.13.0": "transformers==4.57.6",
    "0.14.0": "transformers==4.57.6",
    "0.15.0": "transformers==4.57.6",
    "0.15.1": "transformers==4.57.6",
    "0.16.0": "transformers==4.57.6",
    "0.17.0": "transformers==4.57.6",
    "0.18.0": "transformers==4.57.6",
    "0.19.0": "transformers==4.57.6",
    "0.19.1": "transformers==4.57.6",
    "0.20.0": "transformers==5.6.2",
    "0.22.1": "transformers==5.10.4",
    "0.23.0": "transformers==5.6.2",
    "0.24.0": "transformers==5.6.2",
    "0.26.0": "transformers==5.6.2",
    "0.27.0": "transformers==5.14.1",
    "0.28.0": "transformers==5.10.4",
    "0.29.0": "transformers==5.10.4",
    "0.30.0": "transformers==5.10.4",
    "0.32.0": "transformers==5.19.0",
}
# Packages a release imports at model-building time whose wheel is pure Python
# but whose declared dependencies are CUDA runtimes: installed --no-deps, with
# the dependencies that are not CUDA packages.
NO_DEPS = {
    "humming-kernels": ["cuda-bindings", "pyelftools", "nvidia-ml-py", "tabulate"],
}
# Extra packages a release imports while building models but does not declare.
EXTRA = ["loguru"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def pip(python: Path, args: list[str], cache: Path) -> None:
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    res = sh(cmd + ["--cache-dir", str(cache)] + args)
    if res.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{res.stderr[-3000:]}")


def site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


def wheel_for(version: str, wheel_dir: Path, cache: Path) -> Path:
    hits = sorted(glob.glob(str(wheel_dir / f"vllm-{version}-*.whl")))
    if not hits:
        res = sh(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--cache-dir",
                str(cache),
                "-d",
                str(wheel_dir),
                f"vllm=={version}",
            ]
        )
        if res.returncode != 0:
            raise RuntimeError(f"cannot download vllm {version}: {res.stderr[-2000:]}")
        hits = sorted(glob.glob(str(wheel_dir / f"vllm-{version}-*.whl")))
    return Path(hits[0])


def release_requirements(wheel: Path) -> list[str]:
    """The wheel's unconditional Requires-Dist entries that are safe on CPU."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    out = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _norm(req.name)
        if name in NO_DEPS:
            req.extras = set()
            out.append("--no-deps:" + str(req))
            continue
        if name in SKIP or name.startswith(SKIP_PREFIXES):
            continue
        req.marker = None
        out.append(str(req))
    return out


def ensure_base(root: Path, cache: Path) -> Path:
    base = root / "_base"
    if (base / ".oracle-ready").exists():
        return base
    if not base.exists():
        sh([sys.executable, "-m", "venv", str(base)]).check_returncode()
    py = base / "bin" / "python"
    pip(py, [TORCH, TRITON, "packaging"], cache)
    pip(py, ["--no-deps", TORCHVISION], cache)
    check = sh([str(py), "-c", "import torch; print(torch.__version__)"])
    if not check.stdout.startswith("2.13.0"):
        raise RuntimeError(f"base environment has torch {check.stdout!r}, wanted 2.13.0")
    (base / ".oracle-ready").write_text("ok\n")
    return base


def ensure_release(root: Path, version: str, wheel_dir: Path, cache: Path) -> dict:
    """Create (once) the release's environment; return what went into it."""
    base = ensure_base(root, cache)
    venv = root / version
    info_file = venv / ".oracle-env.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
        if info.get("layout", 1) >= 2:
            return info
        # Environments made before NO_DEPS existed: add those packages.
        py = venv / "bin" / "python"
        for r in release_requirements(Path(wheel_dir) / info["wheel"]):
            if r.startswith("--no-deps:"):
                r = r.split(":", 1)[1]
                name = _norm(re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0])
                pip(py, ["--no-deps", r], cache)
                pip(py, ["-c", str(venv / "constraints.txt"), *NO_DEPS[name]], cache)
                info["requirements"] += [f"{r} (--no-deps)", *NO_DEPS[name]]
        info["layout"] = 2
        info_file.write_text(json.dumps(info, indent=1) + "\n")
        return info
    wheel = wheel_for(version, wheel_dir, cache)
    if not venv.exists():
        sh([sys.executable, "-m", "venv", str(venv)]).check_returncode()
    (site_packages(venv) / "_oracle_base.pth").write_text(f"{site_packages(base)}\n")
    py = venv / "bin" / "python"
    constraints = venv / "constraints.txt"
    constraints.write_text(f"{TORCH}\n{TRITON}\n")
    pip(py, ["--no-deps", str(wheel)], cache)
    reqs = release_requirements(wheel)
    pinned = TRANSFORMERS.get(version)
    if pinned:
        reqs = [r for r in reqs if not _norm(r).startswith("transformers")] + [pinned]
    no_deps = [r.split(":", 1)[1] for r in reqs if r.startswith("--no-deps:")]
    reqs = [r for r in reqs if not r.startswith("--no-deps:")]
    pip(py, ["-c", str(constraints), *reqs, *EXTRA], cache)
    for r in no_deps:
        pip(py, ["--no-deps", r], cache)
        name = _norm(re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0])
        pip(py, ["-c", str(constraints), *NO_DEPS[name]], cache)
        reqs += [f"{r} (--no-deps)", *NO_DEPS[name]]
    versions = sh(
        [
            str(py),
            "-c",
            "import importlib.metadata as m, json, sys;"
            "print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))",
            "vllm",
            "torch",
            "triton",
            "transformers",
            "huggingface_hub",
            "tokenizers",
            "compressed-tensors",
            "numpy",
        ]
    )
    versions.check_returncode()
    info = {
        "layout": 2,
        "wheel": wheel.name,
        "versions": json.loads(versions.stdout),
        "requirements": reqs + EXTRA,
        "skipped": sorted(SKIP) + [p + "*" for p in SKIP_PREFIXES],
    }
    info_file.write_text(json.dumps(info, indent=1) + "\n")
    return info


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="create the oracle's environment for releases")
    ap.add_argument("versions", nargs="+")
    ap.add_argument("--venv-root", type=Path, default=Path("/work/oracle-venvs"))
    ap.add_argument("--wheel-dir", type=Path, default=Path("/work/vllm-wheels"))
    ap.add_argument("--pip-cache", type=Path, default=Path("/work/oracle-cache/pip"))
    a = ap.parse_args()
    for v in a.versions:
        print(v, json.dumps(ensure_release(a.venv_root, v, a.wheel_dir, a.pip_cache)["versions"]))
