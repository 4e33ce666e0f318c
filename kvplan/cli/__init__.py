"""The command line: a thin skin over ``kvplan.api`` and the renderers, one module per command.

``main`` imports only the module of the command being run; ``app`` (the whole
typer application, as tests and tools use it) imports every command module the
first time its commands are read.
"""

import gc

# A command lives for a fraction of a second and makes few reference cycles, so
# the cyclic collector running every 700 allocations while typer, rich and
# kvplan load is start-up time spent for nothing: collect far less often.
gc.set_threshold(50_000, 20, 20)

from kvplan.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
