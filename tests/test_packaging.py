"""The wheel carries everything a plan needs: built from this checkout, installed
outside it, it plans a preset and lists the presets (the top-level presets/
folder ships inside the wheel as kvplan/presets/).  The sdist carries what the
test suite reads, and the declared dependencies say what kvplan really needs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement  # pytest's own dependency

ROOT = Path(__file__).resolve().parents[1]
_SKIP_PARTS = {".git", ".venv", ".ci-venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def tracked_files() -> list[str]:
    """The project's files: what git tracks, or (in an unpacked sdist) every file but caches."""
    done = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode == 0 and done.stdout:
        return [n for n in done.stdout.splitlines() if (ROOT / n).is_file()]
    return sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*")
        if p.is_file()
        and not _SKIP_PARTS & set(p.relative_to(ROOT).parts)
        and not p.relative_to(ROOT).parts[0].endswith(".egg-info")
    )


def _clean_copy(target: Path, keep: Callable[[str], bool]) -> Path:
    """A copy of the project's files that ``keep(name)`` selects, so no stale build output slips in."""
    for name in tracked_files():
        if keep(name):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a clean copy of the sources, so no stale build/ output can slip in.
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("kvplan", "presets"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path_factory.mktemp("wheel")
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)], check=True, capture_output=True
    )
    (wheel,) = wheels.glob("kvplan-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


def _run(target: Path, *code_or_args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(
        [sys.executable, *code_or_args],
        cwd=target.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def test_wheel_plans_a_preset_outside_the_checkout(installed: Path) -> None:
    where = _run(installed, "-c", "import kvplan, sys; print(kvplan.__file__)").stdout.strip()
    assert Path(where).is_relative_to(installed), where  # not the checkout's copy
    out = _run(
        installed, "-m", "kvplan", "plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--format", "json"
    )
    # 20 GiB / (32 layers x 16 tokens x 8 KV heads x 128 x 2 (K, V) x 2 bytes) = 10,240 blocks
    assert json.loads(out.stdout)["num_blocks"] == 10240


def test_wheel_lists_every_preset(installed: Path) -> None:
    out = _run(installed, "-m", "kvplan", "presets", "--format", "json")
    names = {row["name"] for row in json.loads(out.stdout)}
    assert names == {p.stem for p in (ROOT / "presets" / "models").glob("*.yaml")}
    gpus = json.loads(_run(installed, "-m", "kvplan", "gpus", "--format", "json").stdout)
    assert {g["name"] for g in gpus} >= {"H100-80GB", "A100-80GB", "L4"}


# What the test suite reads besides the package: its own files and fixtures, the
# parity harness (tests import tools.vllm_parity), the examples, docs and
# benchmarks, the presets, the CI script (a test reads its typer floor), and
# the top-level files.
SDIST_NEEDS = ("kvplan/", "presets/", "tests/", "tools/", "examples/", "docs/", "benchmarks/", ".ci/")


def test_sdist_carries_what_the_tests_read(tmp_path: Path) -> None:
    source = _clean_copy(tmp_path / "source", lambda n: True)
    out = tmp_path / "dist"
    out.mkdir()
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"
    name = subprocess.run(
        [sys.executable, "-c", code], cwd=source, capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    with tarfile.open(out / name) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    wanted = {
        n
        for n in tracked_files()
        if n.startswith(SDIST_NEEDS) or n in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in")
    }
    assert wanted - members == set()


def test_license_file_is_the_declared_license() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    # The Apache License 2.0's own heading and the last of its terms.
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text


def _requirements(group: str | None = None) -> dict[str, Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = meta["dependencies"] if group is None else meta["optional-dependencies"][group]
    return {r.name: r for r in map(Requirement, listed)}


def test_probe_extra_accepts_the_torch_a_vllm_environment_has() -> None:
    # vLLM 0.10 needs torch 2.7, 0.33 newer ones; the parity harness pins 2.13.0 itself.
    torch = _requirements("probe")["torch"].specifier
    assert all(torch.contains(v) for v in ("2.1.0", "2.7.1", "2.13.0", "2.15.0"))
    assert not torch.contains("2.0.1")


def test_typer_floor_is_the_one_ci_tests() -> None:
    # .ci/run installs exactly this floor in a second environment and runs the suite there.
    floor = _requirements()["typer"].specifier
    ci = (ROOT / ".ci" / "run").read_text()
    (spec,) = list(floor)
    assert spec.operator == ">=" and f"typer=={spec.version}" in ci
