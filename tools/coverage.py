"""Which of vLLM's generative architectures kvplan derives.

    python tools/coverage.py --registry DIR/vllm/model_executor/models/registry.py
        read a release's registry (from its unpacked wheel) into
        tests/coverage/vllm-<version>.json: the architecture names only
    python tools/coverage.py                 print the coverage against the snapshot
    python tools/coverage.py --missing       ... and list what kvplan does not derive
    python tools/coverage.py --readme        rewrite README.md's coverage table

The snapshot holds vLLM's names, grouped as its registry groups them: text
generation (decoder-only), multimodal decoder-only, encoder-decoder, and the
architectures served through the Transformers backend.  kvplan's side is
``kvplan.model.registry`` (ARCHITECTURES and WRAPPERS).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = ROOT / "tests" / "coverage"
README = ROOT / "README.md"
BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"
GROUPS = ("text", "multimodal", "encoder_decoder", "transformers_backend")
GENERATIVE = ("text", "multimodal")
_TABLES = {
    "_TEXT_GENERATION_MODELS": "text",
    "_MULTIMODAL_MODELS": "multimodal",
    "_TRANSFORMERS_SUPPORTED_MODELS": "transformers_backend",
}


def read_registry(path: Path) -> dict[str, list[str]]:
    """vLLM's registered names by group; the ``# [Encoder-decoder]`` part of the
    multimodal table is its own group."""
    return parse_registry(path.read_text())


def parse_registry(source: str) -> dict[str, list[str]]:
    """``read_registry`` on the text of a registry.py."""
    lines = source.splitlines()
    out: dict[str, list[str]] = {g: [] for g in GROUPS}
    for node in ast.parse(source).body:
        targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if not targets and isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        table = next((_TABLES[t] for t in targets if t in _TABLES), None)
        value = getattr(node, "value", None)
        if table is None or not isinstance(value, ast.Dict):
            continue
        marker = next(
            (
                i + 1
                for i in range(value.lineno - 1, value.end_lineno or 0)
                if "# [Encoder-decoder]" in lines[i]
            ),
            None,
        )
        for key in value.keys:
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                group = "encoder_decoder" if marker and key.lineno > marker else table
                out[group].append(key.value)
    return out


def snapshot_path(version: str = "0.33.0") -> Path:
    return SNAPSHOTS / f"vllm-{version}.json"


def load_snapshot(version: str = "0.33.0") -> dict[str, list[str]]:
    """The committed names of a release's registry (a missing file is an error)."""
    return json.loads(snapshot_path(version).read_text())["architectures"]


def derived() -> set[str]:
    """Every architecture name kvplan derives."""
    sys.path.insert(0, str(ROOT))
    from kvplan.model.registry import ARCHITECTURES, WRAPPERS

    return set(ARCHITECTURES) | set(WRAPPERS)


def coverage(snapshot: dict[str, list[str]], ours: set[str]) -> dict[str, tuple[int, int]]:
    """(derived, registered) per group, and over the generative groups."""
    out = {g: (len(ours & set(snapshot[g])), len(snapshot[g])) for g in GROUPS}
    gen = set().union(*(snapshot[g] for g in GENERATIVE))
    out["generative"] = (len(ours & gen), len(gen))
    return out


def families() -> dict[str, list[str]]:
    """kvplan's family label -> architecture names (wrappers under their own label)."""
    from kvplan.model.registry import ARCHITECTURES, WRAPPERS

    out: dict[str, list[str]] = {}
    for name, entry in ARCHITECTURES.items():
        out.setdefault(entry.family, []).append(name)
    for name in WRAPPERS:
        out.setdefault("wrapper of a text backbone", []).append(name)
    return {k: sorted(v) for k, v in sorted(out.items())}


def readme_table(snapshot: dict[str, list[str]]) -> str:
    """The README's coverage block: the counts, then the names by family."""
    ours = derived()
    counts = coverage(snapshot, ours)
    names = {
        "generative": "generative (text + multimodal)",
        "text": "text generation",
        "multimodal": "multimodal",
        "encoder_decoder": "encoder-decoder",
        "transformers_backend": "Transformers backend",
    }
    lines = [BEGIN, "", "| vLLM 0.33.0 registry | derived | registered |", "| --- | ---: | ---: |"]
    for key in ("generative", *GROUPS):
        got, total = counts[key]
        lines.append(f"| {names[key]} | {got} | {total} |")
    lines += ["", "| family | architectures |", "| --- | --- |"]
    for family, archs in families().items():
        lines.append(f"| {family} | {', '.join(f'`{a}`' for a in archs)} |")
    lines += ["", END]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    """``text`` with its coverage block replaced by ``block``."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), flags=re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block")
    return pattern.sub(lambda _: block, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", type=Path, help="a release's vllm/model_executor/models/registry.py")
    parser.add_argument("--version", default="0.33.0", help="the release the registry belongs to")
    parser.add_argument(
        "--missing", action="store_true", help="list the architectures kvplan does not derive"
    )
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's coverage table")
    args = parser.parse_args()
    if args.registry:
        names = read_registry(args.registry)
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        doc = {
            "vllm_version": args.version,
            "source": "vllm/model_executor/models/registry.py",
            "architectures": names,
        }
        snapshot_path(args.version).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {snapshot_path(args.version)}: " + ", ".join(f"{g} {len(names[g])}" for g in GROUPS))
        return 0
    snapshot = load_snapshot(args.version)
    if args.readme:
        README.write_text(replace_block(README.read_text(), readme_table(snapshot)))
    ours = derived()
    for key, (got, total) in coverage(snapshot, ours).items():
        print(f"{key:22} {got:4} of {total:4}")
    if args.missing:
        for group in GROUPS:
            missing = sorted(set(snapshot[group]) - ours)
            print(f"\nnot derived, {group} ({len(missing)}): " + ", ".join(missing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
