"""The command line: a thin skin over ``kvplan.api`` and the renderers, one module per command.

``main`` imports only the module of the command being run; ``app`` (the whole
typer application, as tests and tools use it) imports every command module the
first time its commands are read.
"""

from kvplan.cli.app import app, main

__all__ = ["app", "main"]
