"""The mutation check's list stays applicable: every mutant's text is where it says.

``tools/mutation/run.py`` refuses to run a mutant whose text is not in its file
exactly once; a refactor that moves the code must move the mutant with it, or
the breakage it stands for is no longer checked.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "tools" / "mutation" / "run.py")
assert _spec and _spec.loader
run = importlib.util.module_from_spec(_spec)
sys.modules["mutation_run"] = run  # dataclasses look their module up there
_spec.loader.exec_module(run)


@pytest.mark.parametrize("mutant", run.MUTANTS, ids=lambda m: m.name)
def test_mutant_applies(mutant) -> None:
    if mutant.remove:
        assert all((ROOT / p).exists() for p in mutant.remove)
        return
    text = (ROOT / mutant.path).read_text()
    assert text.count(mutant.old) == 1, f"{mutant.name}: its text is not in {mutant.path} exactly once"
    assert mutant.new != mutant.old
