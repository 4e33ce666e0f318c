"""Reading a vLLM (V1 engine) startup log and re-planning with what it says.

``parse`` picks up the release, model, TP/PP, max_model_len, block size,
dtypes, every worker's "Available KV cache memory" and the capacity lines
("GPU KV cache size", "Maximum concurrency") from a log with or without ANSI
colours and process prefixes (``(EngineCore_DP0 pid=1)``, ``(VllmWorker
rank=3 pid=2)``, ``(RayWorkerWrapper pid=3)``, ``[Stage-0]``).  ``compare``
re-plans at both ends of the rounding window of the printed GiB figures and
says, field by field, whether kvplan agrees with the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from kvplan.errors import InputError
from kvplan.sizes import GiB

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_VERSION = (
    re.compile(r"Initializing a V1 LLM engine \(v?(\d+\.\d+[\w.+-]*)\)"),
    re.compile(r"vLLM API server version v?(\d+\.\d+[\w.+-]*)"),
    re.compile(r"\bvLLM version:? v?(\d+\.\d+[\w.+-]*)"),
)
_MODEL = (
    re.compile(r"Starting to load model (\S+?)(?:\.\.\.|$)"),
    re.compile(r"with config: model='([^']+)'"),
    re.compile(r"'model': '([^']+)'"),
    re.compile(r"'model_tag': '([^']+)'"),
)
_INTS: dict[str, tuple[re.Pattern[str], ...]] = {
    "tp": (re.compile(r"tensor_parallel_size[=:]\s*'?(\d+)"), re.compile(r"'tensor_parallel_size': (\d+)")),
    "pp": (
        re.compile(r"pipeline_parallel_size[=:]\s*'?(\d+)"),
        re.compile(r"'pipeline_parallel_size': (\d+)"),
    ),
    "max_model_len": (re.compile(r"max_seq_len=(\d+)"), re.compile(r"'max_model_len': (\d+)")),
    "block_size": (re.compile(r"'block_size': (\d+)"), re.compile(r"\bblock_size=(\d+)")),
}
_STRS: dict[str, tuple[re.Pattern[str], ...]] = {
    "kv_cache_dtype": (re.compile(r"kv_cache_dtype=(\w+)"), re.compile(r"'kv_cache_dtype': '(\w+)'")),
    "dtype": (re.compile(r"\bdtype=torch\.(\w+)"), re.compile(r"'dtype': '(\w+)'")),
}
_AVAILABLE = re.compile(r"Available KV cache memory: (-?[\d.]+) GiB")
_TOKENS = re.compile(r"GPU KV cache size: ([\d,]+) tokens")
_CONCURRENCY = re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x")
_RANK = re.compile(r"\brank=(\d+)")
_PP_TP = re.compile(r"\bPP(\d+)")
_TP_ONLY = re.compile(r"\bTP(\d+)")


@dataclass(frozen=True)
class Available:
    """One worker's "Available KV cache memory" line.

    gib_text: the figure as printed (two decimals, GiB).  rank/pp_rank/tp_rank
    come from the line's process prefix when it names them.
    """

    gib_text: str
    rank: int | None = None
    pp_rank: int | None = None
    tp_rank: int | None = None

    def window(self) -> tuple[int, int]:
        """The bytes the printed figure can stand for: [x - 0.005, x + 0.005) GiB, as whole bytes."""
        x = Fraction(self.gib_text)
        low = (x - Fraction(1, 200)) * GiB
        high = (x + Fraction(1, 200)) * GiB
        lo = -(-low.numerator // low.denominator)  # ceil
        hi = -(-high.numerator // high.denominator) - 1  # last byte below the upper end
        return max(lo, 1), max(hi, 1)


@dataclass(frozen=True)
class LogFacts:
    """What a startup log says; None where it does not say."""

    vllm_version: str | None = None
    model: str | None = None
    tp: int | None = None
    pp: int | None = None
    max_model_len: int | None = None
    block_size: int | None = None
    kv_cache_dtype: str | None = None
    dtype: str | None = None
    available: tuple[Available, ...] = ()
    kv_cache_tokens: tuple[int, ...] = ()  # every "GPU KV cache size" line, in order
    concurrency: tuple[tuple[int, float], ...] = ()  # (tokens per request, x) per line
    lines: int = 0


def clean_line(line: str) -> str:
    """A log line without ANSI escapes and carriage returns."""
    return _ANSI.sub("", line).replace("\r", "")


def _first(patterns: tuple[re.Pattern[str], ...], line: str) -> str | None:
    for pattern in patterns:
        m = pattern.search(line)
        if m:
            return m.group(1)
    return None


def _prefix(line: str, marker: int) -> str:
    """The part of a line before the message: process prefixes live there."""
    return line[:marker]


def parse(text: str) -> LogFacts:
    """Facts from the text of a vLLM startup log (first occurrence of each setting wins)."""
    found: dict[str, Any] = {}
    available: list[Available] = []
    tokens: list[int] = []
    concurrency: list[tuple[int, float]] = []
    lines = text.splitlines()
    for raw in lines:
        line = clean_line(raw)
        if "version" not in found:
            version = _first(_VERSION, line)
            if version:
                found["version"] = version
        if "model" not in found:
            model = _first(_MODEL, line)
            if model:
                found["model"] = model
        for key, patterns in _INTS.items():
            if key not in found:
                value = _first(patterns, line)
                if value:
                    found[key] = int(value)
        for key, patterns in _STRS.items():
            if key not in found:
                value = _first(patterns, line)
                if value:
                    found[key] = value
        m = _AVAILABLE.search(line)
        if m:
            head = _prefix(line, m.start())
            rank = _RANK.search(head)
            pp_rank = _PP_TP.search(head)
            tp_rank = _TP_ONLY.search(head)
            available.append(
                Available(
                    gib_text=m.group(1),
                    rank=int(rank.group(1)) if rank else None,
                    pp_rank=int(pp_rank.group(1)) if pp_rank else None,
                    tp_rank=int(tp_rank.group(1)) if tp_rank else None,
                )
            )
        m = _TOKENS.search(line)
        if m:
            tokens.append(int(m.group(1).replace(",", "")))
        m = _CONCURRENCY.search(line)
        if m:
            concurrency.append((int(m.group(1).replace(",", "")), float(m.group(2))))
    if "max_model_len" not in found and concurrency:
        found["max_model_len"] = concurrency[0][0]
    return LogFacts(
        vllm_version=found.get("version"),
        model=found.get("model"),
        tp=found.get("tp"),
        pp=found.get("pp"),
        max_model_len=found.get("max_model_len"),
        block_size=found.get("block_size"),
        kv_cache_dtype=found.get("kv_cache_dtype"),
        dtype=found.get("dtype"),
        available=tuple(available),
        kv_cache_tokens=tuple(tokens),
        concurrency=tuple(concurrency),
        lines=len(lines),
    )


def read_log(path: str) -> str:
    """The log's text from a file, or from stdin for ``-``."""
    import sys
    from pathlib import Path

    if path == "-":
        return sys.stdin.read()
    p = Path(path).expanduser()
    try:
        return p.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError("no such file", source=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a log file", source=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", source=path) from None


def find_model_for(name: str) -> Any:
    """The ModelInput for a model the log names: a path, a preset, a preset's hub id or its last part."""
    from kvplan.inputs import presets
    from kvplan.inputs.models import preset_model, resolve_model

    try:
        return resolve_model(name)
    except InputError:
        pass
    tail = name.rstrip("/").rsplit("/", 1)[-1].lower()
    for preset in presets.model_names():
        hf_id = str(presets.model_info(preset).get("hf_id") or "").lower()
        if name.lower() == hf_id or tail in (preset, hf_id.rsplit("/", 1)[-1]):
            return preset_model(preset)
    raise InputError(
        f"the log's model '{name}' is not a file, a preset or a cached hub id",
        field="model",
        hint="give --model PRESET|config.json|model.yaml",
    )


def stage_memory(facts: LogFacts, tp: int, pp: int) -> tuple[Available, ...] | None:
    """The smallest "Available" line of each PP stage (vLLM's rank = pp_rank x tp + tp_rank).

    With no rank in the prefixes, every stage gets the smallest figure printed.
    """
    if not facts.available:
        return None
    by_stage: dict[int, list[Available]] = {}
    for a in facts.available:
        stage = a.pp_rank if a.pp_rank is not None else (a.rank // tp if a.rank is not None else None)
        if stage is None or stage >= pp:
            smallest = min(facts.available, key=lambda x: Fraction(x.gib_text))
            return (smallest,) * pp
        by_stage.setdefault(stage, []).append(a)
    if len(by_stage) != pp:
        smallest = min(facts.available, key=lambda x: Fraction(x.gib_text))
        return (smallest,) * pp
    return tuple(min(by_stage[s], key=lambda x: Fraction(x.gib_text)) for s in range(pp))


@dataclass(frozen=True)
class FieldRow:
    """One line of the side-by-side: what the log says, what kvplan used or computed."""

    name: str
    log: str
    kvplan: str
    status: str  # "same", "differs", "from log", "kvplan only", "not in log"


@dataclass(frozen=True)
class Comparison:
    """The log re-planned: its facts, kvplan's figures at both ends of the rounding window."""

    facts: LogFacts
    model: str
    vllm_version: str
    flags: dict[str, Any]
    tokens_range: tuple[int, int]
    concurrency_range: tuple[float, float]
    num_blocks_range: tuple[int, int]
    rows: tuple[FieldRow, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def differs(self) -> bool:
        """True when any figure the log prints lies outside kvplan's range."""
        return any(r.status == "differs" for r in self.rows)


def _mem_flag(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def compare(facts: LogFacts, overrides: dict[str, Any], model_override: str | None) -> Comparison:
    """Re-plan with the log's settings (``overrides`` beat them) and compare the capacity lines."""
    from kvplan.api import plan
    from kvplan.releases import release_for_log, resolve_release

    notes: list[str] = []
    name = model_override or facts.model
    if name is None:
        raise InputError(
            "the log does not name the model",
            field="model",
            hint="give --model PRESET|config.json|model.yaml",
        )
    model = find_model_for(name)
    version = overrides.get("vllm_version")
    if version is None:
        version, note = release_for_log(facts.vllm_version)
        if note:
            notes.append(note)
    flags: dict[str, Any] = {
        "tp": facts.tp,
        "pp": facts.pp,
        "max_model_len": facts.max_model_len,
        "block_size": facts.block_size,
        "kv_cache_dtype": facts.kv_cache_dtype,
        "vllm_version": version,
    }
    flags.update({k: v for k, v in overrides.items() if v is not None})
    tp = int(flags.get("tp") or model.serving.get("tp") or 1)
    pp = int(flags.get("pp") or model.serving.get("pp") or 1)
    if facts.tp is None and overrides.get("tp") is None:
        notes.append(f"the log does not print the TP size; planned with TP={tp} (give --tp)")
    stages = stage_memory(facts, tp, pp)
    exact_memory = overrides.get("kv_cache_memory") is not None
    if exact_memory or stages is None:
        if not exact_memory and not any(overrides.get(k) for k in ("gpu", "gpu_memory", "probe")):
            raise InputError(
                "the log has no 'Available KV cache memory' line",
                field="kv_cache_memory",
                hint="give --kv-cache-memory SIZE (or --gpu for an estimate)",
            )
        ends = [flags]
    else:
        low = tuple(s.window()[0] for s in stages)
        high = tuple(s.window()[1] for s in stages)
        ends = [{**flags, "kv_cache_memory": _mem_flag(low)}, {**flags, "kv_cache_memory": _mem_flag(high)}]
        if len(set(a.gib_text for a in facts.available)) > 1 and pp == 1:
            notes.append("workers print different Available figures; the smallest bounds every worker")
    plans = [plan(model, **f) for f in ends]
    first, last = plans[0], plans[-1]
    tokens = (first.kv_cache_tokens, last.kv_cache_tokens)
    conc_values = [p.max_concurrency or 0.0 for p in plans]
    conc = (min(conc_values), max(conc_values))
    blocks = (first.num_blocks, last.num_blocks)
    release = resolve_release(first.release.version).version

    rows: list[FieldRow] = []

    def setting(label: str, logged: Any, used: Any) -> None:
        if logged is None:
            rows.append(FieldRow(label, "-", str(used), "not in log"))
        elif str(logged) == str(used):
            rows.append(FieldRow(label, str(logged), str(used), "same"))
        else:
            rows.append(FieldRow(label, str(logged), str(used), "override"))

    setting("vLLM release", facts.vllm_version, release)
    setting("model", facts.model, name)
    setting("tensor parallel", facts.tp, first.serving.tp)
    setting("pipeline parallel", facts.pp, first.serving.pp)
    setting("max_model_len", facts.max_model_len, first.max_model_len)
    setting("block size", facts.block_size, first.block_size)
    setting("KV cache dtype", facts.kv_cache_dtype, first.kv_cache_dtype)
    if facts.dtype is not None or first.description.dtype:
        setting("model dtype", facts.dtype, first.description.dtype)
    if stages is not None:
        for rank, s in enumerate(stages):
            lo, hi = s.window()
            rows.append(
                FieldRow(
                    f"Available KV cache memory (stage {rank})",
                    f"{s.gib_text} GiB",
                    f"{lo:,}..{hi:,} bytes"
                    if not exact_memory
                    else f"{first.stages[rank].available_bytes:,} bytes",
                    "from log" if not exact_memory else "override",
                )
            )
    span = f"{tokens[0]:,}" if tokens[0] == tokens[1] else f"{tokens[0]:,}..{tokens[1]:,}"
    if facts.kv_cache_tokens:
        printed = facts.kv_cache_tokens[0]
        ok = tokens[0] <= printed <= tokens[1]
        rows.append(FieldRow("GPU KV cache size (tokens)", f"{printed:,}", span, "same" if ok else "differs"))
        if len(set(facts.kv_cache_tokens)) > 1:
            notes.append("the log prints several different KV cache sizes; the first is compared")
    else:
        rows.append(FieldRow("GPU KV cache size (tokens)", "-", span, "kvplan only"))
    cspan = f"{conc[0]:.2f}x" if round(conc[0], 2) == round(conc[1], 2) else f"{conc[0]:.2f}x..{conc[1]:.2f}x"
    if facts.concurrency:
        per_req, x = facts.concurrency[0]
        ok = round(conc[0], 2) <= x <= round(conc[1], 2) and per_req == first.max_model_len
        rows.append(
            FieldRow(
                f"Maximum concurrency ({per_req:,} tokens per request)",
                f"{x:.2f}x",
                cspan,
                "same" if ok else "differs",
            )
        )
    else:
        rows.append(FieldRow("Maximum concurrency", "-", cspan, "kvplan only"))
    bspan = f"{blocks[0]:,}" if blocks[0] == blocks[1] else f"{blocks[0]:,}..{blocks[1]:,}"
    rows.append(FieldRow("num_gpu_blocks", "-", bspan, "kvplan only"))
    notes.extend(first.all_notes)
    return Comparison(
        facts=facts,
        model=name,
        vllm_version=release,
        flags=ends[0],
        tokens_range=tokens,
        concurrency_range=conc,
        num_blocks_range=blocks,
        rows=tuple(rows),
        notes=tuple(dict.fromkeys(notes)),
    )
