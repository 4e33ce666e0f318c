"""Every command-line option, declared once.

``SERVING`` lists the serving options of ``plan`` (each also a ``serving:``
key of a model YAML); ``serving_options`` gives a command all of them, so
``plan``, ``check``, ``sweep`` and ``log`` cannot drift apart.  The command
receives them as one ``serving`` dict of the options actually given.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


class Format(StrEnum):
    """Output formats."""

    table = "table"
    json = "json"
    markdown = "markdown"


@dataclass(frozen=True)
class ServingOption:
    """One serving option: its ``Serving`` field, flag spelling, type and help."""

    name: str
    flags: str
    type: Any
    help: str
    default: Any = None


SERVING: tuple[ServingOption, ...] = (
    ServingOption("tp", "--tp", int, "tensor parallel size"),
    ServingOption("pp", "--pp", int, "pipeline parallel size"),
    ServingOption("dcp", "--dcp", int, "decode context parallel size"),
    ServingOption(
        "pp_layer_partition",
        "--pp-layer-partition",
        str,
        "layers per stage, e.g. 7,8,8,7 (VLLM_PP_LAYER_PARTITION)",
    ),
    ServingOption("gpu", "--gpu", str, "GPU preset name (see `kvplan gpus`)"),
    ServingOption("gpu_memory", "--gpu-memory", str, "total GPU memory, e.g. 80GiB"),
    ServingOption("probe", "--probe", bool, "read total memory from the local CUDA device", False),
    ServingOption(
        "gpu_memory_utilization",
        "--gpu-memory-utilization",
        float,
        "vLLM's fraction (default: the release's)",
    ),
    ServingOption(
        "kv_cache_memory",
        "--kv-cache-memory",
        str,
        "KV cache memory per worker (one size, or one per PP stage: 20GiB,18GiB)",
    ),
    ServingOption("max_model_len", "--max-model-len", str, "tokens per request; -1 or auto to fit memory"),
    ServingOption("block_size", "--block-size", int, "tokens per block"),
    ServingOption(
        "kv_cache_dtype", "--kv-cache-dtype", str, "auto, bfloat16, float16, fp8, fp8_e4m3, fp8_e5m2, ..."
    ),
    ServingOption(
        "num_gpu_blocks_override", "--num-gpu-blocks-override", int, "as vLLM's num_gpu_blocks_override"
    ),
    ServingOption(
        "disable_hybrid_kv_cache_manager",
        "--disable-hybrid-kv-cache-manager/--hybrid-kv-cache-manager",
        bool,
        "as vLLM's flag",
    ),
    ServingOption("max_num_batched_tokens", "--max-num-batched-tokens", int, "as in vLLM"),
    ServingOption("max_num_seqs", "--max-num-seqs", int, "as in vLLM"),
    ServingOption("enforce_eager", "--enforce-eager", bool, "no CUDA graphs (memory estimate)"),
    ServingOption(
        "vllm_version",
        "--vllm-version",
        str,
        "vLLM release whose planner to reproduce (default: newest known)",
    ),
    ServingOption(
        "speculative_config",
        "--speculative-config",
        str,
        'as vLLM\'s, a JSON object: \'{"method": "deepseek_mtp", "num_speculative_tokens": 1}\'',
    ),
)

FormatOpt = Annotated[Format, typer.Option("--format", help="table, json or markdown")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]


def _annotation(option: ServingOption, as_list: bool) -> Any:
    if as_list:
        return Annotated[
            str | None, typer.Option(option.flags, help=f"{option.help} (a comma list sweeps it)")
        ]
    kind = option.type if option.default is not None else option.type | None
    return Annotated[kind, typer.Option(option.flags, help=option.help)]


def serving_options(*, lists: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Give a command every serving option; it receives the given ones as ``serving``.

    ``lists`` names options that take comma lists (``sweep``'s axes).  A
    boolean flag left at its default counts as not given.
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
        own = [p for p in own if p.name != "serving"]
        added = [
            inspect.Parameter(
                o.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=o.default,
                annotation=_annotation(o, o.name in lists),
            )
            for o in SERVING
        ]
        positional = [p for p in own if p.default is inspect.Parameter.empty]
        rest = [p for p in own if p.default is not inspect.Parameter.empty]
        params = positional + added + rest

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            serving = {}
            for o in SERVING:
                value = kwargs.pop(o.name, None)
                if value is not None and value != o.default:
                    serving[o.name] = value
            return func(serving=serving, **kwargs)

        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command  # type: ignore[return-value]

    return decorate
