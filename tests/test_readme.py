"""The README's console examples are real: every `$ kvplan ...` command shown is run
again and each output line the README shows (elisions `...` aside) must still be printed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> list[tuple[str, list[str]]]:
    """(command, shown output lines) for every runnable command in a console block."""
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ kvplan "):
                i += 1
                continue
            command = lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + lines[i].strip()
            i += 1
            shown = []
            while i < len(lines) and not lines[i].startswith("$ "):
                shown.append(lines[i])
                i += 1
            if " ... " not in command and not command.endswith(" ..."):
                out.append((command, shown))
    return out


@pytest.mark.parametrize(("command", "shown"), examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_example_is_what_kvplan_prints(kvplan, tmp_path, monkeypatch, command, shown):
    monkeypatch.chdir(README.parent)
    args = shlex.split(command)[1:]
    args = [str(tmp_path / a) if a.endswith(".xml") else a for a in args]
    printed = {line.rstrip() for line in kvplan(*args).stdout.splitlines()}
    for line in shown:
        if line.strip() and line.strip() != "..." and not line.startswith(("<", "  ", "│ ...")):
            assert line.rstrip() in printed, line


def test_readme_python_api_example_prints_what_it_shows(tmp_path, monkeypatch, capsys):
    """The README's Python API example runs and prints the output block that follows it."""
    text = README.read_text()
    code, shown = re.search(
        r"## Python API.*?```python\n(.*?)```.*?```text\n(.*?)```", text, flags=re.S
    ).groups()
    monkeypatch.chdir(tmp_path)  # presets resolve from the package, not the working directory
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown


def test_readme_coverage_table_is_current():
    """README's coverage block is what tools/coverage.py generates from kvplan's registry
    against the committed snapshot of vLLM 0.33.0's registry (vLLM's names only)."""
    from tools.coverage import BEGIN, END, load_snapshot, readme_table

    text = README.read_text()
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == readme_table(load_snapshot("0.33.0")), "run: python tools/coverage.py --readme"
