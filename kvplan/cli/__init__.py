"""The command line: a thin skin over ``kvplan.api`` and the renderers, one module per command."""

from kvplan.cli import check, lists, log, plan, probe, sweep, verify  # noqa: F401  (each registers its command)
from kvplan.cli.app import app, main

__all__ = ["app", "main"]
