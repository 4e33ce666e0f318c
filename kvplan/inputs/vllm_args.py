"""A pasted ``vllm serve`` command line or ``LLM(...)`` keyword list, as serving options.

Every flag kvplan models maps to its serving option (``--tensor-parallel-size
4`` to ``tp``); every other flag is named as ignored, never dropped silently.
The values are validated later, with the other serving options
(``kvplan.inputs.serving.validate``).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from kvplan.errors import InputError
from kvplan.inputs.serving import FIELD_NAMES, VLLM_NAMES
from kvplan.records import record

# vLLM's spelling of every engine argument kvplan models (vllm/engine/arg_utils.py,
# 0.33.0): flag -> (kvplan field, "value" or "bool").  A "bool" flag is vLLM's
# BooleanOptionalAction: --x sets it, --no-x clears it.
VLLM_FLAGS: dict[str, tuple[str, str]] = {
    "--tensor-parallel-size": ("tp", "value"),
    "-tp": ("tp", "value"),
    "--pipeline-parallel-size": ("pp", "value"),
    "-pp": ("pp", "value"),
    "--decode-context-parallel-size": ("dcp", "value"),
    "-dcp": ("dcp", "value"),
    "--data-parallel-size": ("dp", "value"),
    "-dp": ("dp", "value"),
    "--enable-expert-parallel": ("enable_expert_parallel", "bool"),
    "-ep": ("enable_expert_parallel", "bool"),
    "--gpu-memory-utilization": ("gpu_memory_utilization", "value"),
    "--kv-cache-memory-bytes": ("kv_cache_memory_bytes", "value"),
    "--cpu-offload-gb": ("cpu_offload_gb", "value"),
    "--max-model-len": ("max_model_len", "value"),
    "--block-size": ("block_size", "value"),
    "--kv-cache-dtype": ("kv_cache_dtype", "value"),
    "--num-gpu-blocks-override": ("num_gpu_blocks_override", "value"),
    "--disable-hybrid-kv-cache-manager": ("disable_hybrid_kv_cache_manager", "bool"),
    "--enable-prefix-caching": ("enable_prefix_caching", "bool"),
    "--mamba-cache-mode": ("mamba_cache_mode", "value"),
    "--mamba-block-size": ("mamba_block_size", "value"),
    "--mamba-cache-dtype": ("mamba_cache_dtype", "value"),
    "--mamba-ssm-cache-dtype": ("mamba_ssm_cache_dtype", "value"),
    "--async-scheduling": ("async_scheduling", "bool"),
    "--max-num-batched-tokens": ("max_num_batched_tokens", "value"),
    "--max-num-seqs": ("max_num_seqs", "value"),
    "--enforce-eager": ("enforce_eager", "bool"),
    "--quantization": ("quantization", "value"),
    "-q": ("quantization", "value"),
    "--dtype": ("dtype", "value"),
    "--performance-mode": ("performance_mode", "value"),
    "--speculative-config": ("speculative_config", "value"),
}
# The environment variables kvplan models: vLLM's layer split over PP stages, and its sampler.
VLLM_ENV = {
    "VLLM_PP_LAYER_PARTITION": "pp_layer_partition",
    "VLLM_USE_FLASHINFER_SAMPLER": "flashinfer_sampler",
}
# vLLM's boolean flags kvplan does not model, so the next word is not taken for their value.
_OTHER_SWITCHES = frozenset(
    {
        "--trust-remote-code",
        "--enable-chunked-prefill",
        "--enable-auto-tool-choice",
        "--enable-lora",
        "--disable-log-requests",
        "--disable-log-stats",
        "--enable-log-requests",
        "--disable-custom-all-reduce",
        "--enable-sleep-mode",
        "--enable-reasoning",
        "--headless",
        "--disable-frontend-multiprocessing",
        "--enable-eplb",
        "--enable-dbo",
        "--disable-sliding-window",
        "--disable-cascade-attn",
        "--skip-tokenizer-init",
        "--enable-prompt-tokens-details",
        "--enable-server-load-tracking",
        "--disable-fastapi-docs",
        "--enable-force-include-usage",
        "--enable-request-id-headers",
        "--enable-log-outputs",
        "--enable-mfu-metrics",
        "--enable-return-routed-experts",
        "--disable-uvicorn-access-log",
    }
)
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FIELD = "--vllm-args"


@record(frozen=True)
class VllmArgs:
    """What a pasted vLLM command gives: the model, serving options and what kvplan ignores.

    ``serving`` maps serving keys (kvplan's field names or vLLM's) to the raw
    values; ``mapped`` lists each modelled flag as written; ``ignored`` each
    flag (with its value) kvplan does not model.
    """

    model: str | None
    serving: dict[str, Any]
    mapped: tuple[str, ...]
    ignored: tuple[str, ...]


def _flag_key(token: str) -> str:
    """``--max_model_len`` and ``--max-model-len`` are one flag, as vLLM's parser has it."""
    if token.startswith("--"):
        return "--" + token[2:].replace("_", "-")
    return token


def _words(text: str) -> list[str]:
    joined = re.sub(r"\\\r?\n", " ", text)
    try:
        return shlex.split(joined)
    except ValueError as exc:
        raise InputError(f"cannot split the command line ({exc})", field=_FIELD, value=text) from None


def parse_command(text: str) -> VllmArgs:
    """A ``vllm serve MODEL --flag value ...`` line (or ``python -m vllm.entrypoints...``)."""
    words = _words(text)
    serving: dict[str, Any] = {}
    mapped: list[str] = []
    ignored: list[str] = []
    while words and _ENV.match(words[0]):
        name, _, setting = words.pop(0).partition("=")
        if name in VLLM_ENV:
            # VLLM_USE_FLASHINFER_SAMPLER is read as bool(int(value)), as vllm/envs.py does.
            is_switch = name == "VLLM_USE_FLASHINFER_SAMPLER" and setting.strip().lstrip("-").isdigit()
            serving[VLLM_ENV[name]] = bool(int(setting)) if is_switch else setting
            mapped.append(f"{name}={setting}")
        else:
            ignored.append(f"{name}={setting}")
    # The program: `vllm serve`, `python -m vllm.entrypoints.openai.api_server`, or nothing.
    if words and words[0].rsplit("/", 1)[-1] == "vllm":
        words.pop(0)
        if words and words[0] == "serve":
            words.pop(0)
    elif words and words[0].rsplit("/", 1)[-1].startswith("python"):
        words.pop(0)
        if len(words) >= 2 and words[0] == "-m":
            words = words[2:]
    model = None
    if words and not words[0].startswith("-"):
        model = words.pop(0)
    i = 0
    value: Any
    spelled: dict[str, str] = {}
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":
            continue
        if not word.startswith("-"):
            if model is None:
                model = word
            else:
                ignored.append(word)
            continue
        flag, eq, inline = word.partition("=")
        key = _flag_key(flag)
        negated = key.startswith("--no-") and ("--" + key[5:]) in VLLM_FLAGS
        known = VLLM_FLAGS.get("--" + key[5:] if negated else key)
        if key == "--model" and not eq and i < len(words):
            model, i = words[i], i + 1
            continue
        if key == "--model" and eq:
            model = inline
            continue
        if known is None:
            takes_value = not eq and key not in _OTHER_SWITCHES and not key.startswith("--no-")
            if takes_value and i < len(words) and not words[i].startswith("-"):
                ignored.append(f"{flag} {words[i]}")
                i += 1
            else:
                ignored.append(word)
            continue
        name, kind = known
        if kind == "bool":
            if eq:
                raise InputError(
                    f"{flag} is a switch and takes no value", field=_FIELD, value=word, hint=f"write {flag}"
                )
            value = not negated
            mapped.append(word)
        else:
            if eq:
                value = inline
            elif i < len(words):
                value, i = words[i], i + 1
            else:
                raise InputError(f"{flag} needs a value", field=_FIELD, value=text)
            mapped.append(f"{flag} {value}")
        if name in serving and serving[name] != value:
            raise InputError(
                f"gives {spelled[name]} {serving[name]} and {flag} {value}",
                field=_FIELD,
                hint="vLLM would take the last; give it once",
            )
        serving[name] = value
        spelled[name] = flag
    return VllmArgs(model, serving, tuple(mapped), tuple(ignored))


def _literal(node: Any) -> Any:
    """A literal, or whole-number arithmetic on literals (``20 * 1024**3``); ValueError otherwise."""
    import ast
    import operator

    ops = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv,
    }
    if isinstance(node, ast.BinOp) and (type(node.op) in ops or isinstance(node.op, ast.Pow)):
        left, right = _literal(node.left), _literal(node.right)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right)):
            raise ValueError("arithmetic on whole numbers only")
        if isinstance(node.op, ast.Pow):
            if not 0 <= right <= 64 or abs(left) > 1 << 20:
                raise ValueError("exponent out of range")
            return left**right
        return ops[type(node.op)](left, right)
    return ast.literal_eval(node)


def parse_keywords(text: str) -> VllmArgs:
    """An ``LLM(model=..., tensor_parallel_size=4, ...)`` call or its bare keyword list."""
    import ast

    body = text.strip()
    if not re.match(r"^[\w.]+\s*\(", body):
        body = f"LLM({body})"
    try:
        call = ast.parse(body, mode="eval").body
    except SyntaxError as exc:
        raise InputError(f"not a keyword list ({exc.msg})", field=_FIELD, value=text) from None
    if not isinstance(call, ast.Call):
        raise InputError("expected LLM(...) or name=value, ...", field=_FIELD, value=text)
    model = None
    serving: dict[str, Any] = {}
    mapped: list[str] = []
    ignored: list[str] = []
    if call.args:
        try:
            model = _literal(call.args[0])
        except ValueError:
            raise InputError("the model must be a literal string", field=_FIELD, value=text) from None
    for kw in call.keywords:
        source = ast.get_source_segment(body, kw) or str(kw.arg)
        if kw.arg is None:
            ignored.append(source)
            continue
        try:
            value = _literal(kw.value)
        except ValueError:
            ignored.append(source)  # a variable or a call: kvplan cannot know its value
            continue
        if kw.arg == "model":
            model = value
        elif kw.arg in VLLM_NAMES or (kw.arg in FIELD_NAMES and kw.arg not in _KVPLAN_ONLY):
            serving[kw.arg] = value
            mapped.append(source)
        else:
            ignored.append(source)
    if model is not None and not isinstance(model, str):
        raise InputError("the model must be a string", field=_FIELD, value=model)
    return VllmArgs(model, serving, tuple(mapped), tuple(ignored))


# Serving fields that are kvplan's own, not vLLM engine arguments (or kvplan spells
# them differently from vLLM: tp is tensor_parallel_size there).
_KVPLAN_ONLY = frozenset(
    {
        "tp",
        "pp",
        "dcp",
        "dp",
        "gpu",
        "gpu_memory",
        "probe",
        "vllm_version",
        "kv_cache_memory",
        "pp_layer_partition",
    }
)


def parse(text: str) -> VllmArgs:
    """A pasted ``vllm serve ...`` line, or an ``LLM(...)`` / ``name=value, ...`` keyword list."""
    if not text or not text.strip():
        raise InputError("is empty", field=_FIELD, hint='paste a "vllm serve MODEL --flag value ..." line')
    stripped = text.strip()
    if re.match(r"^[\w.]*LLM\s*\(", stripped):
        return parse_keywords(stripped)
    # name=value, name=value (no flags, no program): keywords; VAR=x vllm serve ...: a command.
    if re.match(r"^[a-z_]\w*\s*=", stripped) and not re.search(r"(^|\s)(-{1,2}[\w-]|vllm\b)", stripped):
        return parse_keywords(stripped)
    return parse_command(stripped)


def describe(args: VllmArgs) -> tuple[str, ...]:
    """Notes for the plan: what was taken from the pasted command and what was ignored."""
    notes = []
    if args.mapped:
        notes.append("from --vllm-args: " + " ".join(args.mapped))
    if args.ignored:
        notes.append("--vllm-args: ignored (kvplan does not model them): " + ", ".join(args.ignored))
    return tuple(notes)
