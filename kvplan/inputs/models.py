"""Reading a MODEL argument: preset, kvplan YAML, config.json, directory or hub id.

Everything here turns files into plain dicts and reports mistakes as
``InputError`` naming the file and field.  Nothing touches the network: a hub
id resolves only from the local Hugging Face cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import field
from pathlib import Path
from typing import Any

from kvplan.errors import InputError
from kvplan.inputs.files import load_json_text, load_yaml_text, read_text
from kvplan.records import record

KVPLAN_SECTIONS = ("serving", "layers", "budget")
_HUB_ID = r"^[A-Za-z0-9][\w.-]*/[\w.-]+$"


@record(eq=False)
class ModelInput:
    """A model's raw inputs: its HF config and kvplan's optional sections."""

    label: str  # how the user named it
    source: str  # the file (or preset) the values came from
    config: dict[str, Any]
    serving: dict[str, Any] = field(default_factory=dict)
    layers: list[Any] | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = None  # where safetensors may be found
    notes: tuple[str, ...] = ()  # how the name was resolved, when it is worth saying


def _as_mapping(data: Any, source: str) -> dict[str, Any]:
    if data is None:
        raise InputError("file is empty", source=source, hint="expected a model config mapping")
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping of config keys, got a {type(data).__name__}", source=source)
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise InputError("config keys must be strings", source=source, field=str(bad[0]), value=bad[0])
    return data


def _section(data: dict[str, Any], key: str, kind: type, source: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise InputError(
            f"must be a {'mapping' if kind is dict else 'list'}",
            source=source,
            field=key,
            value=type(value).__name__,
        )
    return value


def from_yaml_file(path: Path, label: str) -> ModelInput:
    """A kvplan model YAML: HF config keys plus optional serving/layers/budget."""
    source = str(path)
    data = _as_mapping(load_yaml_text(read_text(path), source), source)
    if "config" in data and isinstance(data["config"], dict) and "architectures" not in data:
        # A preset-style file (name/source/config) used directly.
        config = dict(data["config"])
    else:
        config = {k: v for k, v in data.items() if k not in KVPLAN_SECTIONS}
    return ModelInput(
        label=label,
        source=source,
        config=config,
        serving=_section(data, "serving", dict, source) or {},
        layers=_section(data, "layers", list, source),
        budget=_section(data, "budget", dict, source) or {},
        directory=path.parent,
    )


def from_json_file(path: Path, label: str) -> ModelInput:
    """A Hugging Face ``config.json``."""
    source = str(path)
    config = _as_mapping(load_json_text(read_text(path), source), source)
    return ModelInput(label=label, source=source, config=config, directory=path.parent)


def hf_cache_dirs() -> list[Path]:
    """Where the local Hugging Face hub cache may be (``HF_HUB_CACHE``, ``HF_HOME``)."""
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        dirs.append(Path(os.environ["HUGGINGFACE_HUB_CACHE"]))
    home = os.environ.get("HF_HOME")
    dirs.append(Path(home) / "hub" if home else Path.home() / ".cache" / "huggingface" / "hub")
    return dirs


def find_in_hf_cache(repo_id: str) -> Path | None:
    """The newest cached ``config.json`` of a hub id, or None (never downloads).

    An unreadable cache folder or snapshot is an ``InputError`` naming it.
    """
    folder = "models--" + repo_id.replace("/", "--")
    for cache in hf_cache_dirs():
        snapshots = cache / folder / "snapshots"
        try:
            if not snapshots.is_dir():
                continue
            ref = cache / folder / "refs" / "main"
            if ref.is_file():
                candidate = snapshots / ref.read_text().strip() / "config.json"
                if candidate.is_file():
                    return candidate
            found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
        except OSError as exc:
            raise InputError(
                f"cannot read the Hugging Face cache ({exc.strerror or exc})",
                source=str(exc.filename or snapshots),
                hint="check the folder's permissions",
            ) from None
        if found:
            return found[-1]
    return None


def preset_model(name: str) -> ModelInput | None:
    """The model preset called ``name`` (case-insensitive), or None."""
    from kvplan.inputs import presets

    data = presets.find_model(name)
    if data is None:
        return None
    key = name.strip().lower()
    return ModelInput(
        label=key,
        source=f"preset {key}",
        config=dict(data["config"]),
        serving=dict(data.get("serving") or {}),
    )


def _looks_like_path(name: str) -> bool:
    """A name written as a file path: a model-file suffix, or a ./ ../ / ~ start."""
    return name.lower().endswith((".yaml", ".yml", ".json")) or name.startswith(("./", "../", "/", "~", "."))


def _local(name: str, path: Path) -> ModelInput | None:
    """The model at an existing path (directory, ``.json``, ``.yaml``/``.yml``), or None."""
    try:
        if path.is_dir():
            config = path / "config.json"
            if not config.is_file():
                raise InputError(
                    "directory has no config.json", source=str(path), hint="point at a model directory"
                )
            return from_json_file(config, name)
        if path.exists():
            suffix = path.suffix.lower()
            if suffix == ".json":
                return from_json_file(path, name)
            if suffix in (".yaml", ".yml"):
                return from_yaml_file(path, name)
            raise InputError(
                "unknown file type", source=str(path), hint="a .yaml/.yml model file or a config.json"
            )
        if path.is_symlink():
            raise InputError(
                "is a symbolic link to nothing (a dangling link, or a loop)",
                source=str(path),
                hint="point at the model file or directory itself",
            )
    except PermissionError:
        raise InputError("cannot read it (permission denied)", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror or exc})", source=str(path)) from None
    return None


def resolve_model(name: str) -> ModelInput:
    """Turn a MODEL argument into its raw inputs.

    Order: an existing path (directory, ``.json``, ``.yaml``/``.yml``), then a
    preset name, then a hub id in the local HF cache, then the preset whose
    ``hf_id`` that hub id is.  A name written as a path that does not exist is
    "no such file", never a hub id.
    """
    if not name or not name.strip():
        raise InputError("MODEL is empty", hint="a preset name, a YAML, a config.json or a directory")
    path = Path(name).expanduser()
    local = _local(name, path)
    if local is not None:
        return local
    if _looks_like_path(name):
        raise InputError("no such file or directory", source=str(path))
    preset = preset_model(name)
    if preset is not None:
        return preset
    if re.match(_HUB_ID, name):
        cached = find_in_hf_cache(name)
        if cached is not None:
            return from_json_file(cached, name)
        from kvplan.inputs import presets

        known = presets.find_model_by_hf_id(name)
        if known is not None:
            model = preset_model(known)
            assert model is not None
            model.notes = (
                f"{name} is not in the local Hugging Face cache: planned from preset {known}, its config.json",
            )
            return model
        raise InputError(
            f"'{name}' is not in the local Hugging Face cache",
            hint="kvplan never downloads; run `huggingface-cli download "
            f"{name} config.json` or point at a config.json",
        )
    if "/" in name:
        raise InputError("no such file or directory", source=str(path))
    raise InputError(
        f"unknown model '{name}'",
        hint="not a file, a preset (see `kvplan presets`) or a cached hub id (org/name)",
    )
