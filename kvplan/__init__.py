"""kvplan: plan vLLM's KV cache from a model config, without a GPU.

The pipeline, one subpackage per stage, imports flowing one way:

    inputs -> model -> vllm -> memory -> api (Plan) -> workflows -> render -> cli

``kvplan.plan(model, **serving)`` runs it and returns a ``Plan``::

    import kvplan
    p = kvplan.plan("llama-3.1-8b", kv_cache_memory="20GiB", tp=2)
    p.num_blocks, p.kv_cache_tokens, p.max_concurrency
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Plan", "plan", "to_json", "__version__"]

if TYPE_CHECKING:
    from kvplan.api import Plan, plan
    from kvplan.render.document import document as to_json


def __getattr__(name: str) -> Any:
    # Loaded on first use, so the command line pays nothing for the facade.
    if name in ("Plan", "plan"):
        from kvplan import api

        return getattr(api, name)
    if name == "to_json":
        from kvplan.render.document import document

        return document
    raise AttributeError(f"module 'kvplan' has no attribute {name!r}")
