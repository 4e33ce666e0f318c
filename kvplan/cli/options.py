"""Every command-line option, declared once.

``SERVING`` lists the serving options of ``plan`` (each also a ``serving:``
key of a model YAML); ``serving_options`` gives a command all of them, so
``plan``, ``check``, ``sweep`` and ``log`` cannot drift apart.  The command
receives them as one ``serving`` dict of the options actually given.  Each
option also answers to vLLM's own flag where kvplan's is shorter
(``--tp`` / ``--tensor-parallel-size``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, NamedTuple, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


class Format(StrEnum):
    """Output formats."""

    table = "table"
    json = "json"
    markdown = "markdown"


class ServingOption(NamedTuple):
    """One serving option: its ``Serving`` field, flag spellings, type, metavar and help.

    ``flags`` is a tuple of names; a switch is one ``"--on/--off"`` entry.
    """

    name: str
    flags: tuple[str, ...]
    type: Any
    help: str
    metavar: str | None = None
    default: Any = None


def _switch(name: str, flag: str, help: str) -> ServingOption:
    """An on/off option spelled as vLLM spells it: ``--flag`` / ``--no-flag``."""
    return ServingOption(name, (f"{flag}/--no-{flag[2:]}",), bool, help)


SERVING: tuple[ServingOption, ...] = (
    ServingOption("tp", ("--tp", "--tensor-parallel-size"), int, "tensor parallel size", "N"),
    ServingOption("pp", ("--pp", "--pipeline-parallel-size"), int, "pipeline parallel size", "N"),
    ServingOption(
        "dcp", ("--dcp", "--decode-context-parallel-size"), int, "decode context parallel size", "N"
    ),
    ServingOption(
        "dp",
        ("--dp", "--data-parallel-size"),
        int,
        "data parallel size: engines of TP x PP GPUs each",
        "N",
    ),
    _switch(
        "enable_expert_parallel",
        "--enable-expert-parallel",
        "split the MoE experts over TP x DP ranks",
    ),
    ServingOption(
        "pp_layer_partition",
        ("--pp-layer-partition",),
        str,
        "layers per stage, as VLLM_PP_LAYER_PARTITION",
        "7,8,8,7",
    ),
    ServingOption("gpu", ("--gpu",), str, "GPU preset (see `kvplan gpus`)", "NAME"),
    ServingOption("gpu_memory", ("--gpu-memory",), str, "total GPU memory, e.g. 80GiB", "SIZE"),
    ServingOption("probe", ("--probe",), bool, "total memory of the local CUDA device", default=False),
    ServingOption(
        "gpu_memory_utilization",
        ("--gpu-memory-utilization",),
        float,
        "vLLM's fraction (default: the release's)",
        "F",
    ),
    ServingOption(
        "kv_cache_memory",
        ("--kv-cache-memory",),
        str,
        "KV cache memory per worker: one size, or one per PP stage",
        "SIZE[,SIZE]",
    ),
    ServingOption(
        "kv_cache_memory_bytes",
        ("--kv-cache-memory-bytes",),
        str,
        "vLLM's name for it: one size (20G = 20 GiB, 20g = 20e9)",
        "SIZE",
    ),
    ServingOption(
        "cpu_offload_gb", ("--cpu-offload-gb",), float, "GiB of weights vLLM keeps in CPU memory", "GIB"
    ),
    ServingOption(
        "max_model_len", ("--max-model-len",), str, "tokens per request (32k, 32K); auto or -1 fits", "N"
    ),
    ServingOption("block_size", ("--block-size",), int, "tokens per block", "N"),
    ServingOption(
        "kv_cache_dtype", ("--kv-cache-dtype",), str, "auto, bfloat16, float16, fp8, fp8_e5m2, ...", "DTYPE"
    ),
    ServingOption(
        "num_gpu_blocks_override", ("--num-gpu-blocks-override",), int, "blocks per worker, as vLLM's", "N"
    ),
    _switch(
        "disable_hybrid_kv_cache_manager",
        "--disable-hybrid-kv-cache-manager",
        "one KV cache group type (vLLM's flag)",
    ),
    _switch("enable_prefix_caching", "--enable-prefix-caching", "prefix caching (sets the Mamba cache mode)"),
    ServingOption(
        "mamba_cache_mode", ("--mamba-cache-mode",), str, "none, align or all (0.15 - 0.32)", "MODE"
    ),
    ServingOption("mamba_block_size", ("--mamba-block-size",), int, "tokens per Mamba state block", "N"),
    ServingOption(
        "mamba_cache_dtype", ("--mamba-cache-dtype",), str, "Mamba state dtype: auto, float32, ...", "DTYPE"
    ),
    ServingOption(
        "mamba_ssm_cache_dtype", ("--mamba-ssm-cache-dtype",), str, "Mamba SSM state dtype", "DTYPE"
    ),
    _switch("async_scheduling", "--async-scheduling", "async scheduling (default: on)"),
    ServingOption("max_num_batched_tokens", ("--max-num-batched-tokens",), str, "as in vLLM (8k, 8K)", "N"),
    ServingOption("max_num_seqs", ("--max-num-seqs",), int, "as in vLLM", "N"),
    ServingOption(
        "enforce_eager", ("--enforce-eager",), bool, "no CUDA graphs (memory estimate)", default=False
    ),
    ServingOption(
        "vllm_version",
        ("--vllm-version",),
        str,
        "release whose planner to reproduce (default: newest)",
        "X.Y[.Z]",
    ),
    ServingOption(
        "quantization",
        ("--quantization", "-q"),
        str,
        "vLLM's --quantization (fp8, awq, gptq, mxfp4, ...)",
        "METHOD",
    ),
    ServingOption(
        "dtype", ("--dtype",), str, "vLLM's --dtype: auto, half, float16, bfloat16, float32", "DTYPE"
    ),
    ServingOption(
        "usage_context",
        ("--usage-context",),
        str,
        "serve (vllm serve, default), llm (offline LLM), engine",
        "CONTEXT",
    ),
    ServingOption(
        "performance_mode", ("--performance-mode",), str, "balanced, interactivity or throughput", "MODE"
    ),
    ServingOption(
        "flashinfer_sampler",
        ("--flashinfer-sampler/--no-flashinfer-sampler",),
        bool,
        "vLLM's sampler uses FlashInfer top-k/top-p (VLLM_USE_FLASHINFER_SAMPLER; before 0.11.1 only "
        "when flashinfer is installed); default: the release's",
    ),
    ServingOption(
        "vllm_args",
        ("--vllm-args",),
        str,
        'a pasted "vllm serve MODEL ..." line or LLM(...) keywords',
        "TEXT",
    ),
    ServingOption(
        "speculative_config",
        ("--speculative-config",),
        str,
        'as vLLM\'s, a JSON object: \'{"method": "deepseek_mtp", "num_speculative_tokens": 1}\'',
        "JSON",
    ),
)

FormatOpt = Annotated[Format, typer.Option("--format", help="table, json or markdown")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]


def _annotation(option: ServingOption, as_list: bool) -> Any:
    if as_list:
        return Annotated[
            str | None,
            typer.Option(
                *option.flags, help=f"{option.help} (a comma list sweeps it)", metavar=option.metavar
            ),
        ]
    kind = option.type if option.default is not None else option.type | None
    return Annotated[kind, typer.Option(*option.flags, help=option.help, metavar=option.metavar)]


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
        positional = [p for p in own if p.default is inspect.Parameter.empty or _is_argument(p)]
        rest = [p for p in own if p not in positional]
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
        # typer takes a parameter's type hint only where the signature carries no typer
        # annotation (the context); resolving the other forty hints on every start is waste.
        command.__annotations__ = {p.name: p.annotation for p in params if not _typer_annotated(p)}
        return command  # type: ignore[return-value]

    return decorate


def _typer_annotated(param: inspect.Parameter) -> bool:
    """Whether the parameter's annotation carries a ``typer.Option`` or ``typer.Argument``."""
    return any(
        isinstance(m, typer.models.ParameterInfo) for m in getattr(param.annotation, "__metadata__", ())
    )


def _is_argument(param: inspect.Parameter) -> bool:
    """A positional CLI argument (``typer.Argument``) or the click context, kept first."""
    meta = getattr(param.annotation, "__metadata__", ())
    return any(isinstance(m, typer.models.ArgumentInfo) for m in meta) or param.name == "ctx"
