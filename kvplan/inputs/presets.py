"""Built-in presets: model configs and GPU memory sizes, shipped as data files.

Model presets are ``presets/models/<name>.yaml`` (the published config.json
under ``config:`` plus its source); GPUs are ``presets/gpus.yaml``.  The
``presets/`` folder ships inside the wheel as ``kvplan/presets/``.  Files are
read lazily, one at a time, so a plan on one preset parses one small file.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from kvplan.errors import InputError
from kvplan.records import record


@cache
def _data_dir() -> Path:
    # Installed from a wheel the data sit in kvplan/presets/; from a source
    # checkout (editable install) the package maps to the top-level presets/.
    installed = Path(__file__).parents[1] / "presets"
    if installed.is_dir():
        return installed
    import importlib.util

    spec = importlib.util.find_spec("kvplan.presets")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else Path(__file__).parents[2] / "presets"


def model_names() -> list[str]:
    """Every model preset name, sorted."""
    folder = _data_dir() / "models"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@cache
def _load_model(name: str) -> dict[str, Any]:
    from kvplan.inputs.files import load_yaml_text

    text = (_data_dir() / "models" / f"{name}.yaml").read_text(encoding="utf-8")
    data = load_yaml_text(text, f"preset {name}")
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise InputError("preset file is malformed", source=f"preset {name}")
    return data


def model_info(name: str) -> dict[str, Any]:
    """A preset's file contents: name, hf_id, source, notes and config."""
    return _load_model(name)


_PRESET_NAME = r"^[a-z0-9][a-z0-9._-]*$"


def find_model(name: str) -> dict[str, Any] | None:
    """The file contents of the preset called ``name`` (case-insensitive), or None.

    Only a plain preset name is looked up (``../gpus`` is not one), so no
    other file of the presets folder can be read as a model.
    """
    key = name.strip().lower()
    if not re.match(_PRESET_NAME, key) or key.endswith((".yaml", ".yml")):
        return None
    path = _data_dir() / "models" / f"{key}.yaml"
    if not path.is_file():
        return None
    return _load_model(key)


def find_model_by_hf_id(repo_id: str) -> str | None:
    """The preset whose ``hf_id`` is ``repo_id`` (case-insensitive), or None.

    A preset holds that repository's config.json, so a hub id kvplan cannot
    find in the local cache can still be planned from it.
    """
    wanted = repo_id.strip().lower()
    folder = _data_dir() / "models"
    for name in model_names():
        text = (folder / f"{name}.yaml").read_text(encoding="utf-8")
        m = re.search(r"^hf_id:\s*(\S+)\s*$", text, flags=re.M)
        if m and m.group(1).strip("'\"").lower() == wanted:
            return name
    return None


@record(eq=False)
class GPU:
    """A GPU preset: the total memory torch reports on it, and where that figure is from."""

    name: str
    aliases: tuple[str, ...]
    total_bytes: int
    vendor: str
    source: str
    notes: str
    arch: str = "hopper"
    unified: bool = False  # CPU and GPU share one memory (GB10, GH200)


def _gpu(row: dict[str, Any]) -> GPU:
    return GPU(
        name=row["name"],
        aliases=tuple(row.get("aliases") or ()),
        total_bytes=int(row["total_bytes"]),
        vendor=str(row.get("vendor", "")),
        source=str(row.get("source", "")),
        notes=str(row.get("notes", "")),
        arch=str(row.get("arch", "hopper")),
        unified=bool(row.get("unified", False)),
    )


@cache
def _gpus_text() -> str:
    return (_data_dir() / "gpus.yaml").read_text(encoding="utf-8")


@cache
def gpus() -> tuple[GPU, ...]:
    """Every GPU preset, in file order."""
    from kvplan.inputs.files import load_yaml_text

    return tuple(_gpu(row) for row in load_yaml_text(_gpus_text(), "gpus.yaml") or [])


def _candidate_entries(key: str) -> list[GPU]:
    """Parse only the entries whose text mentions ``key`` (one plan needs one GPU)."""
    from kvplan.inputs.files import load_yaml_text

    text = _gpus_text()
    starts = [m.start() for m in re.finditer(r"^- name:", text, flags=re.M)]
    found: list[GPU] = []
    for a, b in zip(starts, [*starts[1:], len(text)], strict=True):
        chunk = text[a:b]
        if key in chunk.lower():
            found.extend(_gpu(row) for row in load_yaml_text(chunk, "gpus.yaml") or [])
    return found


@cache
def find_gpu(name: str) -> GPU:
    """The GPU preset matching ``name`` or one of its aliases (case-insensitive).

    Cached: a sweep names a few GPUs in thousands of combinations.
    """
    key = name.strip().lower()
    for gpu in _candidate_entries(key) if key else ():
        if key == gpu.name.lower() or key in (a.lower() for a in gpu.aliases):
            return gpu
    raise InputError(
        "unknown GPU",
        field="gpu",
        value=name,
        hint="see `kvplan gpus`, or give --gpu-memory SIZE",
    )
