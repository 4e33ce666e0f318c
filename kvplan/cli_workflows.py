"""Operator workflow commands (check, sweep, log), registered on the main app.

Kept apart from ``cli.py`` so the ``plan`` path imports nothing it does not use:
command bodies import their modules lazily.
"""

from __future__ import annotations
