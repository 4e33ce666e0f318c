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
from dataclasses import field
from fractions import Fraction
from typing import Any

from kvplan.errors import InputError, KvplanError
from kvplan.records import record
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
    "quantization": (
        re.compile(r"\bquantization=(?!None)([\w-]+)"),
        re.compile(r"'quantization': '([\w-]+)'"),
    ),
}
_AVAILABLE = re.compile(r"Available KV cache memory: (-?[\d.]+) GiB")
_TOKENS = re.compile(r"GPU KV cache size: ([\d,]+) tokens")
_CONCURRENCY = re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x")
_RANK = re.compile(r"\brank=(\d+)")
_PP_TP = re.compile(r"\bPP(\d+)")
_TP_ONLY = re.compile(r"\bTP(\d+)")
_WORKER = re.compile(r"\((?:Worker|VllmWorker)[_ ](?:PP(\d+)_?)?(?:TP(\d+))?")
_SOURCE_LINE = re.compile(r"\[(?:[\w/]+/)?([\w.]+\.py):(\d+)\]")
_NON_DEFAULT = re.compile(r"non-default args: \{(.*)\}")
_ARG = re.compile(r"'(\w+)': ('[^']*'|-?[\d.]+(?:e-?\d+)?|True|False|None)")
_CHUNKED = re.compile(r"max_num_batched_tokens=(\d+)")
_LOADING = re.compile(r"Model loading took ([\d.]+) ?GiB")
_GRAPH_ESTIMATE = re.compile(r"Estimated CUDA graph memory: ([\d.]+) GiB")
_FREE = re.compile(
    r"Free memory on device \(([\d.]+)/([\d.]+) GiB\) on startup\. Desired GPU memory utilization is "
    r"\(([\d.]+), ([\d.]+) GiB\)\.(?: Actual usage is ([\d.]+) GiB for (weight|consumed memory)[^,]*, "
    r"([\d.]+) GiB for peak activation(?:, ([\d.]+) GiB for non-torch memory)?)?"
)
_PROFILING = re.compile(
    r"torch peak memory increase: ([\d.]+) ?GiB; non-torch forward increase memory: ([\d.]+) ?GiB"
)
_TOTAL_CAPACITY = re.compile(r"total capacity of ([\d.]+) GiB")
_GPU_NAMES = (
    re.compile(r"device_name=([A-Za-z0-9_\-]+?)(?:[,.]json|,|\.json|$)"),
    re.compile(r"Found GPU\d+ (.+?) which is of cuda capability"),
    re.compile(r"\bGPU \d+: ((?:NVIDIA|AMD) [^(\n]+?)\s*(?:\(|$)"),
    re.compile(r"\|\s+\d+\s+((?:NVIDIA|AMD) [\w\- ]+?)\s{2,}"),
)
_FAILURE = re.compile(r"(?:ValueError|RuntimeError|torch\.OutOfMemoryError): (.+)$")
# vLLM's logger line of "Available KV cache memory" in v1/worker/gpu_worker.py, per release
# (read from each wheel), and of "GPU KV cache size" in v1/core/kv_cache_utils.py to tell
# releases that share the first apart.
AVAILABLE_LINES: dict[int, tuple[str, ...]] = {
    255: ("0.10.0",), 276: ("0.10.1.1",), 298: ("0.10.2", "0.11.0"), 359: ("0.11.1", "0.12.0"),
    375: ("0.13.0",), 358: ("0.14.0",), 356: ("0.15.1",), 373: ("0.16.0",), 424: ("0.17.0",),
    456: ("0.18.0",), 436: ("0.19.1",), 440: ("0.20.1",), 462: ("0.21.0",), 466: ("0.22.0",),
    480: ("0.23.0",), 508: ("0.24.0",), 538: ("0.25.0",), 560: ("0.26.0",), 563: ("0.27.0",),
    578: ("0.28.0",), 625: ("0.29.0",), 640: ("0.30.0",), 692: ("0.31.0",), 759: ("0.32.0",),
    772: ("0.33.0",),
}  # fmt: skip
KV_SIZE_LINES: dict[int, str] = {864: "0.10.2", 1087: "0.11.0", 1229: "0.11.1", 1286: "0.12.0"}


@record(frozen=True)
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


@record(frozen=True)
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
    version_from_lines: str | None = None  # the release the source line numbers point to
    gpu_name: str | None = None
    gpu_total_gib: float | None = None
    gpu_memory_utilization: float | None = None
    requested_gib: float | None = None
    weights_gib: float | None = None  # "Model loading took"
    consumed_gib: float | None = None  # 0.27+ Free-memory line: weights + non-torch
    activation_gib: float | None = None
    non_torch_gib: float | None = None
    graph_estimate_gib: float | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool | None = None
    quantization: str | None = None
    sampler: str | None = None  # "flashinfer" or "pytorch", when the log says which
    usage: str | None = None  # "serve" when the OpenAI server ran
    tp_from_workers: int | None = None
    pp_from_workers: int | None = None
    failure: str | None = None  # vLLM's error when the engine did not start


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
    extra: dict[str, Any] = {}
    available: list[Available] = []
    tokens: list[int] = []
    concurrency: list[tuple[int, float]] = []
    tp_ranks: set[int] = set()
    pp_ranks: set[int] = set()
    lines = text.splitlines()
    for raw in lines:
        line = clean_line(raw)
        _more_facts(line, extra, tp_ranks, pp_ranks)
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
            where = _SOURCE_LINE.search(line)
            if where and where.group(1) == "gpu_worker.py":
                extra.setdefault("available_line", int(where.group(2)))
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
            where = _SOURCE_LINE.search(line)
            if where and where.group(1) == "kv_cache_utils.py":
                extra.setdefault("kv_size_line", int(where.group(2)))
        m = _CONCURRENCY.search(line)
        if m:
            concurrency.append((int(m.group(1).replace(",", "")), float(m.group(2))))
    if "max_model_len" not in found and concurrency:
        found["max_model_len"] = concurrency[0][0]
    args = extra.get("args", {})
    for key, arg in (
        ("tp", "tensor_parallel_size"),
        ("pp", "pipeline_parallel_size"),
        ("max_model_len", "max_model_len"),
        ("block_size", "block_size"),
        ("kv_cache_dtype", "kv_cache_dtype"),
        ("dtype", "dtype"),
    ):
        if key not in found and args.get(arg) is not None:
            found[key] = args[arg]
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
        version_from_lines=_release_from_lines(extra.get("available_line"), extra.get("kv_size_line")),
        gpu_name=extra.get("gpu_name"),
        gpu_total_gib=extra.get("gpu_total_gib"),
        gpu_memory_utilization=_number(args.get("gpu_memory_utilization")) or extra.get("util"),
        requested_gib=extra.get("requested_gib"),
        weights_gib=extra.get("weights_gib"),
        consumed_gib=extra.get("consumed_gib"),
        activation_gib=extra.get("activation_gib"),
        non_torch_gib=extra.get("non_torch_gib"),
        graph_estimate_gib=extra.get("graph_estimate_gib"),
        max_num_batched_tokens=_whole(args.get("max_num_batched_tokens")) or extra.get("chunked_mnbt"),
        max_num_seqs=_whole(args.get("max_num_seqs")),
        enforce_eager=args.get("enforce_eager") if isinstance(args.get("enforce_eager"), bool) else None,
        quantization=found.get("quantization"),
        sampler=extra.get("sampler"),
        usage=extra.get("usage"),
        tp_from_workers=max(tp_ranks) + 1 if tp_ranks else None,
        pp_from_workers=max(pp_ranks) + 1 if pp_ranks else None,
        failure=extra.get("failure"),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _more_facts(line: str, extra: dict[str, Any], tp_ranks: set[int], pp_ranks: set[int]) -> None:
    """The memory facts of one line: args, GPU, the profile's terms, the sampler, a failure."""
    m = _WORKER.search(line)
    if m and (m.group(1) or m.group(2)):
        if m.group(1):
            pp_ranks.add(int(m.group(1)))
        if m.group(2):
            tp_ranks.add(int(m.group(2)))
    if "args" not in extra:
        m = _NON_DEFAULT.search(line)
        if m:
            import ast

            args: dict[str, Any] = {}
            for key, value in _ARG.findall(m.group(1)):
                try:
                    args.setdefault(key, ast.literal_eval(value))
                except (ValueError, SyntaxError):
                    continue
            extra["args"] = args
    if "APIServer" in line or "api_server.py" in line:
        extra.setdefault("usage", "serve")
    if "Chunked prefill is enabled" in line and (m := _CHUNKED.search(line)):
        extra.setdefault("chunked_mnbt", int(m.group(1)))
    if m := _LOADING.search(line):
        extra.setdefault("weights_gib", float(m.group(1)))
    if m := _GRAPH_ESTIMATE.search(line):
        extra.setdefault("graph_estimate_gib", float(m.group(1)))
    if m := _FREE.search(line):
        extra.setdefault("gpu_total_gib", float(m.group(2)))
        extra.setdefault("util", float(m.group(3)))
        extra.setdefault("requested_gib", float(m.group(4)))
        if m.group(5):
            extra.setdefault(
                "consumed_gib" if m.group(6).startswith("consumed") else "weights_gib", float(m.group(5))
            )
            extra.setdefault("activation_gib", float(m.group(7)))
            if m.group(8):
                extra.setdefault("non_torch_gib", float(m.group(8)))
    if m := _PROFILING.search(line):
        extra.setdefault("activation_gib", float(m.group(1)))
        extra.setdefault("non_torch_gib", float(m.group(2)))
    if (m := _TOTAL_CAPACITY.search(line)) and "gpu_total_gib" not in extra:
        extra["gpu_total_gib"] = float(m.group(1))
    if "gpu_name" not in extra:
        for pattern in _GPU_NAMES:
            if m := pattern.search(line):
                extra["gpu_name"] = m.group(1).replace("_", " ").strip()
                break
    if "FlashInfer for top-p & top-k sampling" in line and "Using" in line:
        extra.setdefault("sampler", "flashinfer")
    elif "PyTorch-native implementation of top-p & top-k sampling" in line:
        extra.setdefault("sampler", "pytorch")
    if "failure" not in extra and (m := _FAILURE.search(line)):
        text = m.group(1).strip()
        if "cache blocks" in text or "max seq len" in text or "out of memory" in text.lower():
            extra["failure"] = text
    if "EngineCore failed to start" in line:
        extra.setdefault("failed", True)


def _release_from_lines(available_line: int | None, kv_size_line: int | None) -> str | None:
    """The release whose source has these logger line numbers (None when they match none)."""
    candidates = AVAILABLE_LINES.get(available_line or -1, ())
    if len(candidates) > 1 and kv_size_line in KV_SIZE_LINES:
        narrowed = [c for c in candidates if KV_SIZE_LINES[kv_size_line] == c]
        candidates = tuple(narrowed) or candidates
    if candidates:
        return candidates[-1] if len(candidates) == 1 else "/".join(candidates)
    if kv_size_line in KV_SIZE_LINES:
        return KV_SIZE_LINES[kv_size_line]
    return None


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


@record(frozen=True)
class FieldRow:
    """One line of the side-by-side: what the log says, what kvplan used or computed."""

    name: str
    log: str
    kvplan: str
    status: str  # "same", "differs", "from log", "kvplan only", "not in log"


@record(frozen=True)
class Comparison:
    """The log re-planned: its facts, kvplan's figures at both ends of the rounding window.

    ``vllm_refused``: vLLM's reason when the log shows it did not start;
    ``kvplan_refusal``: kvplan's reason for the same setup (None when kvplan
    would start it).  ``estimate``: kvplan's memory estimate for the log's GPU
    and settings, when the GPU is known.
    """

    facts: LogFacts
    model: str
    vllm_version: str
    flags: dict[str, Any]
    tokens_range: tuple[int, int]
    concurrency_range: tuple[float, float]
    num_blocks_range: tuple[int, int]
    rows: tuple[FieldRow, ...]
    notes: tuple[str, ...] = field(default=())
    vllm_refused: str | None = None
    kvplan_refusal: str | None = None
    estimate: Any = None

    @property
    def differs(self) -> bool:
        """True when any figure the log prints lies outside kvplan's range."""
        return any(r.status == "differs" for r in self.rows)

    @property
    def refusal_reproduced(self) -> bool:
        """vLLM refused to start and kvplan refuses the same setup."""
        return self.vllm_refused is not None and self.kvplan_refusal is not None


def _mem_flag(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def gpu_preset_for(name: str | None) -> str | None:
    """The GPU preset a device name in a log stands for (``NVIDIA_H200``, ``NVIDIA GeForce RTX 3090``)."""
    if not name:
        return None
    from kvplan.inputs.presets import find_gpu

    key = name.replace("_", " ").strip()
    candidates = [key, re.sub(r"^(NVIDIA|AMD)\s+", "", key), re.sub(r"^(NVIDIA\s+)?(GeForce\s+)?", "", key)]
    candidates += [c.replace(" ", "-") for c in candidates]
    for candidate in candidates:
        try:
            return find_gpu(candidate).name
        except InputError:
            continue
    return None


def _gib(x: int) -> str:
    return f"{x / GiB:.2f} GiB"


def _term(budget: Any, name: str, stage: int = 0) -> int | None:
    for term in budget.stages[stage].terms:
        if term.name == name:
            return -term.bytes if term.bytes < 0 else term.bytes
    return None


def _estimate_rows(facts: LogFacts, est: Any) -> list[FieldRow]:
    """The log's memory terms beside kvplan's estimate of each (status ``estimate``)."""
    rows = []
    budget = est.memory
    pairs = [
        (
            "requested (total x utilization)",
            facts.requested_gib,
            _term(budget, "requested (x gpu_memory_utilization)"),
        ),
        ("weights (Model loading took)", facts.weights_gib, _term(budget, "weights")),
        ("weights + non-torch (consumed)", facts.consumed_gib, None),
        ("activation peak", facts.activation_gib, _term(budget, "activation peak")),
        ("non-torch memory", facts.non_torch_gib, _term(budget, "non-torch memory")),
        ("CUDA graph estimate", facts.graph_estimate_gib, _term(budget, "CUDA graphs")),
    ]
    for name, logged, mine in pairs:
        if logged is None and mine is None:
            continue
        left = "-" if logged is None else f"{logged:.2f} GiB"
        right = "-" if mine is None else _gib(mine)
        if logged is not None and mine is not None:
            right += f" ({mine / GiB - logged:+.2f})"
        rows.append(FieldRow(name, left, right, "estimate"))
    printed = [Fraction(a.gib_text) for a in facts.available]
    for stage in budget.stages:
        shown = f"{float(min(printed)):.2f} GiB" if printed else "-"
        right = _gib(stage.available)
        if printed:
            right += f" ({stage.available / GiB - float(min(printed)):+.2f})"
        label = f"Available KV cache memory, estimated (stage {stage.pp_rank})"
        rows.append(FieldRow(label, shown, right, "estimate"))
    return rows


def compare(facts: LogFacts, overrides: dict[str, Any], model_override: str | None) -> Comparison:
    """Re-plan with the log's settings (``overrides`` beat them) and compare the capacity lines.

    The settings are the log's engine line, its non-default args, the chunked
    prefill line, the worker prefixes (TP x PP) and its GPU; the release is the
    banner's, else the one its source line numbers belong to.  When the GPU is
    known, kvplan's memory estimate is set beside the logged terms.  A log whose
    engine did not start is re-planned with the memory it logged: the verdict is
    whether kvplan refuses it too.
    """
    from kvplan.api import plan, plan_with
    from kvplan.inputs import serving as serving_mod
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
        if facts.vllm_version is None and facts.version_from_lines:
            version = facts.version_from_lines.split("/")[-1]
            notes.append(
                f"the log does not print the vLLM release; its source line numbers are those of vLLM "
                f"{facts.version_from_lines}: planned as {version} (give --vllm-version)"
            )
        else:
            version, note = release_for_log(facts.vllm_version)
            if note:
                notes.append(note)
    gpu_given = any(overrides.get(k) for k in ("gpu", "gpu_memory", "probe"))
    gpu = None if gpu_given else gpu_preset_for(facts.gpu_name)
    if facts.gpu_name and not gpu_given:
        notes.append(
            f"GPU from the log: {facts.gpu_name}"
            + (
                f" (preset {gpu})"
                if gpu
                else " (no kvplan preset; give --gpu for its block sizes and kernels)"
            )
        )
    tp = facts.tp or facts.tp_from_workers
    pp = facts.pp or facts.pp_from_workers
    if facts.tp is None and facts.tp_from_workers:
        notes.append(f"TP={facts.tp_from_workers} from the worker prefixes (Worker_TP0..)")
    if facts.pp is None and facts.pp_from_workers:
        notes.append(f"PP={facts.pp_from_workers} from the worker prefixes (Worker_PP0..)")
    flags: dict[str, Any] = {
        "tp": tp,
        "pp": pp,
        "max_model_len": facts.max_model_len,
        "block_size": facts.block_size,
        "kv_cache_dtype": facts.kv_cache_dtype,
        "vllm_version": version,
        "gpu": gpu,
        "gpu_memory_utilization": facts.gpu_memory_utilization,
        "max_num_batched_tokens": facts.max_num_batched_tokens,
        "max_num_seqs": facts.max_num_seqs,
        "enforce_eager": facts.enforce_eager or None,
        "quantization": facts.quantization,
        "flashinfer_sampler": {"flashinfer": True, "pytorch": False}.get(facts.sampler or ""),
    }
    flags.update({k: v for k, v in overrides.items() if v is not None})
    tp = int(flags.get("tp") or model.serving.get("tp") or 1)
    pp = int(flags.get("pp") or model.serving.get("pp") or 1)
    if facts.tp is None and facts.tp_from_workers is None and overrides.get("tp") is None:
        notes.append(f"the log does not print the TP size; planned with TP={tp} (give --tp)")
    stages = stage_memory(facts, tp, pp)
    exact_memory = overrides.get("kv_cache_memory") is not None
    refused = facts.failure or (
        "Available KV cache memory at or below zero"
        if stages is not None and any(Fraction(s.gib_text) <= 0 for s in stages)
        else None
    )
    estimate_flags = {k: v for k, v in flags.items() if k != "kv_cache_memory"}
    if stages is not None and any(Fraction(s.gib_text) <= 0 for s in stages) and not exact_memory:
        # vLLM logged no memory for the KV cache: plan with exactly that figure.
        logged = tuple(int(Fraction(s.gib_text) * GiB) for s in stages)
        options = serving_mod.merge(
            model.serving, model.source, {k: v for k, v in flags.items() if v is not None}
        )
        from dataclasses import replace as _replace

        plans = [plan_with(model, _replace(options, kv_cache_memory=logged))]
        ends = [flags]
    else:
        if exact_memory or stages is None:
            if not exact_memory and not any(flags.get(k) for k in ("gpu", "gpu_memory", "probe")):
                raise InputError(
                    "the log has no 'Available KV cache memory' line",
                    field="kv_cache_memory",
                    hint="give --kv-cache-memory SIZE (or --gpu for an estimate)",
                )
            ends = [flags]
        else:
            low = tuple(s.window()[0] for s in stages)
            high = tuple(s.window()[1] for s in stages)
            ends = [
                {**flags, "kv_cache_memory": _mem_flag(low)},
                {**flags, "kv_cache_memory": _mem_flag(high)},
            ]
            if len(set(a.gib_text for a in facts.available)) > 1 and pp == 1:
                notes.append("workers print different Available figures; the smallest bounds every worker")
        plans = [plan(model, **f) for f in ends]
    first, last = plans[0], plans[-1]
    kvplan_refusal = first.refusal if refused else None
    tokens = (first.kv_cache_tokens, last.kv_cache_tokens)
    conc_values = [p.max_concurrency or 0.0 for p in plans]
    conc = (min(conc_values), max(conc_values))
    blocks = (first.num_blocks, last.num_blocks)
    release = resolve_release(first.release.version).version
    estimate = None
    total_known = flags.get("gpu") or flags.get("gpu_memory") or flags.get("probe") or facts.gpu_total_gib
    if total_known:
        est_flags = dict(estimate_flags)
        if not any(est_flags.get(k) for k in ("gpu", "gpu_memory", "probe")) and facts.gpu_total_gib:
            est_flags["gpu_memory"] = str(round(facts.gpu_total_gib * GiB))
            notes.append(f"the estimate takes the GPU's total from the log: {facts.gpu_total_gib} GiB")
        try:
            estimate = plan(model, **est_flags)
        except KvplanError as err:
            notes.append(f"no estimate: {err.message}")

    rows: list[FieldRow] = []

    def setting(label: str, logged: Any, used: Any) -> None:
        if logged is None:
            rows.append(FieldRow(label, "-", str(used), "not in log"))
        elif str(logged) == str(used):
            rows.append(FieldRow(label, str(logged), str(used), "same"))
        else:
            rows.append(FieldRow(label, str(logged), str(used), "override"))

    by_lines = f"{facts.version_from_lines} (by line numbers)" if facts.version_from_lines else None
    setting("vLLM release", facts.vllm_version or by_lines, release)
    setting("model", facts.model, name)
    setting("tensor parallel", facts.tp or facts.tp_from_workers, first.serving.tp)
    setting("pipeline parallel", facts.pp or facts.pp_from_workers, first.serving.pp)
    if facts.gpu_name or first.serving.gpu:
        setting("GPU", facts.gpu_name, first.serving.gpu or "-")
    setting("max_model_len", facts.max_model_len, first.max_model_len)
    setting("block size", facts.block_size, first.block_size)
    setting("KV cache dtype", facts.kv_cache_dtype, first.kv_cache_dtype)
    if facts.dtype is not None or first.description.dtype:
        setting("model dtype", facts.dtype, first.description.dtype)
    if facts.max_num_batched_tokens or facts.max_num_seqs:
        setting("max_num_batched_tokens", facts.max_num_batched_tokens, first.max_num_batched_tokens)
        setting("max_num_seqs", facts.max_num_seqs, first.max_num_seqs)
    if stages is not None:
        for rank, s in enumerate(stages):
            lo, hi = s.window()
            shown = (
                f"{first.stages[rank].available_bytes:,} bytes"
                if exact_memory or refused and Fraction(s.gib_text) <= 0
                else f"{lo:,}..{hi:,} bytes"
            )
            rows.append(
                FieldRow(
                    f"Available KV cache memory (stage {rank})",
                    f"{s.gib_text} GiB",
                    shown,
                    "from log" if not exact_memory else "override",
                )
            )
    if refused:
        status = "same" if kvplan_refusal else "differs"
        rows.append(
            FieldRow(
                "vLLM start-up",
                f"refused: {refused}",
                f"refuses: {kvplan_refusal}" if kvplan_refusal else "starts",
                status,
            )
        )
    else:
        span = f"{tokens[0]:,}" if tokens[0] == tokens[1] else f"{tokens[0]:,}..{tokens[1]:,}"
        if facts.kv_cache_tokens:
            printed = facts.kv_cache_tokens[0]
            ok = tokens[0] <= printed <= tokens[1]
            rows.append(
                FieldRow("GPU KV cache size (tokens)", f"{printed:,}", span, "same" if ok else "differs")
            )
            if len(set(facts.kv_cache_tokens)) > 1:
                notes.append("the log prints several different KV cache sizes; the first is compared")
        else:
            rows.append(FieldRow("GPU KV cache size (tokens)", "-", span, "kvplan only"))
        cspan = (
            f"{conc[0]:.2f}x" if round(conc[0], 2) == round(conc[1], 2) else f"{conc[0]:.2f}x..{conc[1]:.2f}x"
        )
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
    if estimate is not None:
        rows.extend(_estimate_rows(facts, estimate))
    if facts.sampler:
        notes.append(
            "the log's sampler: "
            + (
                "FlashInfer top-k/top-p"
                if facts.sampler == "flashinfer"
                else "PyTorch-native top-k/top-p (sort)"
            )
        )
    notes.extend(first.all_notes)
    if estimate is not None:
        notes.extend(estimate.memory.notes)
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
        vllm_refused=refused,
        kvplan_refusal=kvplan_refusal,
        estimate=estimate,
    )
