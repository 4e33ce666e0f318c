"""Shared test helpers: run the CLI in-process and capture its outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from kvplan.cli import app


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test (and the subprocesses it starts) off the CI's real step summary,
    and lay output out for 80 columns whatever terminal runs the tests.

    GitHub Actions sets ``GITHUB_STEP_SUMMARY`` for the whole job; ``kvplan
    check`` appends to it.  A test that wants a summary sets its own path.
    """
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # Output is laid out for COLUMNS when stdout is not a terminal; tests read 80 columns
    # unless they set their own.
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def kvplan():
    runner = CliRunner()

    def run(*args: str) -> Outcome:
        result = runner.invoke(app, [str(a) for a in args])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return run
