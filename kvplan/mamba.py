"""Mamba and linear-attention layers: per-rank state shapes, as vLLM computes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FAMILIES: dict[str, tuple[str, Callable[..., Any]]] = {}


def align(model: Any, serving: Any, release: Any, context: Any) -> tuple[Any, str]:
    """Placeholder until the hybrid alignment step lands: explicit layers only."""
    return context, "block size from explicit layers"
