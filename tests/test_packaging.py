"""The wheel carries everything a plan needs: built from this checkout, installed
outside it, it plans a preset and lists the presets (the top-level presets/
folder ships inside the wheel as kvplan/presets/)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
