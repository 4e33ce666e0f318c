"""``kvplan sweep``: one plan per combination of a grid of serving options.

The model is resolved and described once; every combination replaces fields
of one ``Serving`` and runs the pipeline (``kvplan.api.plan_with``).  A
combination vLLM would refuse (heads not divisible by TP, PP deeper than the
model, a max_model_len the planner rejects) becomes an ``Invalid`` entry with
the reason, not an error.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from math import prod
from typing import Any

from kvplan.api import plan_with
from kvplan.errors import InputError, KvplanError
from kvplan.inputs import serving as serving_mod
from kvplan.inputs.models import ModelInput
from kvplan.inputs.serving import Serving
from kvplan.model.describe import describe
from kvplan.records import record
from kvplan.releases import resolve_release

AXES: tuple[str, ...] = ("tp", "pp", "dp", "gpu", "kv_cache_dtype", "block_size", "max_model_len")
SORT_KEYS: tuple[str, ...] = ("tokens", "concurrency", "gpus")
# Grids larger than this are refused unless raised (--max-configurations): about
# a second per thousand configurations.
MAX_CONFIGURATIONS = 10_000


@record(frozen=True)
class Target:
    """What the cheapest configuration must reach (None: no requirement)."""

    min_concurrency: float | None = None  # requests of max_model_len tokens at once
    min_kv_tokens: int | None = None  # KV cache tokens


@record(frozen=True)
class Combo:
    """One point of the grid (None: the model's or the YAML's value)."""

    tp: int
    pp: int
    dp: int
    gpu: str | None
    kv_cache_dtype: str
    block_size: int | None
    max_model_len: int | None

    @property
    def gpus(self) -> int:
        """GPUs the combination occupies: TP x PP x DP."""
        return self.tp * self.pp * self.dp

    def label(self) -> str:
        """``tp=2 pp=1 gpu=H100-80GB kv=fp8 block=16 len=8192`` (``dp=`` when above 1)."""
        return " ".join(
            f"{name}={'-' if value is None else value}"
            for name, value in (
                ("tp", self.tp),
                ("pp", self.pp),
                *((("dp", self.dp),) if self.dp > 1 else ()),
                ("gpu", self.gpu),
                ("kv", self.kv_cache_dtype),
                ("block", self.block_size),
                ("len", self.max_model_len),
            )
        )


@record(frozen=True)
class Row:
    """The plan of one valid combination.

    gpus: tp x pp x dp.  kv_cache_tokens and max_concurrency as the selected
    release logs them; available_kv_bytes is the smallest stage's KV memory.
    """

    combo: Combo
    gpus: int
    block_size: int
    max_model_len: int
    num_blocks: int
    kv_cache_tokens: int
    max_concurrency: float
    fits: bool
    available_kv_bytes: int
    estimated: bool
    meets_target: bool

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON (and CSV) fields."""
        return {
            "tp": self.combo.tp,
            "pp": self.combo.pp,
            "dp": self.combo.dp,
            "gpus": self.gpus,
            "gpu": self.combo.gpu,
            "kv_cache_dtype": self.combo.kv_cache_dtype,
            "block_size": self.block_size,
            "max_model_len": self.max_model_len,
            "num_blocks": self.num_blocks,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": round(self.max_concurrency, 4),
            "fits": self.fits,
            "available_kv_bytes": self.available_kv_bytes,
            "memory_estimated": self.estimated,
            "meets_target": self.meets_target,
        }


@record(frozen=True)
class Invalid:
    """A combination that cannot run, and why."""

    combo: Combo
    reason: str


@record(frozen=True)
class SweepResult:
    """Every row (sorted), every invalid combination, and the cheapest row meeting the target."""

    model: str
    vllm_version: str
    rows: tuple[Row, ...]
    invalid: tuple[Invalid, ...]
    best: Row | None
    target: Target
    sort: str


def parse_list(text: str | None, field: str) -> list[str] | None:
    """``1,2,4`` -> ["1", "2", "4"]; None stays None; empty items are errors."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not items or any(not item for item in items):
        raise InputError("must be a comma list with no empty items", field=field, value=text)
    return list(dict.fromkeys(items))


def axis_values(raw: dict[str, str | None], base: Serving) -> dict[str, list[Any]]:
    """Each axis's values, validated as serving options; an axis not given keeps ``base``'s value."""
    out: dict[str, list[Any]] = {}
    for axis in AXES:
        items = parse_list(raw.get(axis), f"--{axis.replace('_', '-')}")
        if items is None:
            out[axis] = [getattr(base, axis)]
            continue
        values = []
        for item in items:
            if axis == "gpu":
                from kvplan.inputs.presets import find_gpu

                values.append(find_gpu(item).name)
            else:
                values.append(serving_mod.validate({axis: item}, None)[axis])
        out[axis] = list(dict.fromkeys(values))
    return out


def _sort_key(sort: str) -> Any:
    if sort == "tokens":
        return lambda r: (-r.kv_cache_tokens, r.gpus)
    if sort == "concurrency":
        return lambda r: (-r.max_concurrency, r.gpus)
    return lambda r: (r.gpus, -r.kv_cache_tokens)


def cheapest(rows: list[Row]) -> Row | None:
    """Fewest GPUs (tp x pp x dp), then most KV cache tokens, among rows meeting the target."""
    candidates = [r for r in rows if r.meets_target]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (r.gpus, -r.kv_cache_tokens))


def none_can_run(invalid: list[Invalid]) -> str:
    """Why no combination of a grid can run: each distinct reason, how often, and one example."""
    by_reason: dict[str, list[Combo]] = {}
    for bad in invalid:
        by_reason.setdefault(bad.reason, []).append(bad.combo)
    lines = [f"none of the {len(invalid):,} configurations can run:"]
    for reason, combos in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        lines.append(f"  {len(combos):,} x {reason} (e.g. {combos[0].label()})")
    return "\n".join(lines)


def grid_size(axes: dict[str, list[Any]]) -> int:
    """How many configurations ``axes`` make."""
    return prod(len(axes[a]) for a in AXES)


def check_grid_size(axes: dict[str, list[Any]], limit: int = MAX_CONFIGURATIONS) -> int:
    """The grid's size; ``InputError`` with the count when it exceeds ``limit``."""
    size = grid_size(axes)
    if size > limit:
        shape = " x ".join(f"{len(axes[a])} {a}" for a in AXES if len(axes[a]) > 1)
        raise InputError(
            f"the grid has {size:,} configurations ({shape}), more than the limit of {limit:,}",
            field="--max-configurations",
            hint=f"raise it with --max-configurations {size} (about 1 s per 1,000), or narrow an axis",
        )
    return size


def sweep(
    model: ModelInput,
    base: Serving,
    axes: dict[str, list[Any]],
    target: Target,
    sort: str = "tokens",
    progress: Callable[[int, int], None] | None = None,
    limit: int = MAX_CONFIGURATIONS,
) -> SweepResult:
    """Plan every combination of ``axes`` on top of ``base``; describe the model once.

    ``progress(done, total)`` is called after each combination (the CLI draws a
    bar from it).  A grid over ``limit`` configurations is refused.
    """
    if sort not in SORT_KEYS:
        raise InputError(
            "unknown sort key", field="--sort", value=sort, hint="one of " + ", ".join(SORT_KEYS)
        )
    total = check_grid_size(axes, limit)
    release = resolve_release(base.vllm_version)
    description = describe(model, release)
    if axes["gpu"] != [None] and base.gpu_memory is not None:
        raise InputError(
            "--gpu and --gpu-memory both give the total memory", field="gpu", hint="give one of them"
        )
    rows: list[Row] = []
    invalid: list[Invalid] = []
    for done, values in enumerate(itertools.product(*(axes[a] for a in AXES)), start=1):
        if progress is not None:
            progress(done - 1, total)
        combo = Combo(**dict(zip(AXES, values, strict=True)))
        options = replace(
            base,
            tp=combo.tp,
            pp=combo.pp,
            dp=combo.dp,
            gpu=combo.gpu,
            kv_cache_dtype=combo.kv_cache_dtype,
            block_size=combo.block_size,
            max_model_len=combo.max_model_len,
            vllm_version=release.version,
        )
        try:
            result = plan_with(model, options, description)
        except KvplanError as err:
            invalid.append(Invalid(combo, err.message))
            continue
        if min(result.memory.available) <= 0:
            # vLLM refuses to start when nothing is left for the KV cache after the weights.
            short = min(result.memory.available) / (1 << 30)
            invalid.append(Invalid(combo, f"no memory left for the KV cache ({short:.2f} GiB per worker)"))
            continue
        plan = result
        tokens = plan.kv_cache_tokens
        conc = plan.max_concurrency or 0.0
        meets = plan.fit.fits
        if target.min_concurrency is not None:
            meets = meets and conc >= target.min_concurrency
        if target.min_kv_tokens is not None:
            meets = meets and tokens >= target.min_kv_tokens
        rows.append(
            Row(
                combo=combo,
                gpus=combo.gpus,
                block_size=plan.block_size,
                max_model_len=plan.max_model_len,
                num_blocks=plan.num_blocks,
                kv_cache_tokens=tokens,
                max_concurrency=conc,
                fits=plan.fit.fits,
                available_kv_bytes=min(result.memory.available),
                estimated=not result.memory.exact,
                meets_target=meets,
            )
        )
    if progress is not None:
        progress(total, total)
    if not rows:
        raise InputError(none_can_run(invalid), hint="see the reasons above; change the grid")
    rows.sort(key=_sort_key(sort))
    return SweepResult(
        model=model.label,
        vllm_version=release.version,
        rows=tuple(rows),
        invalid=tuple(invalid),
        best=cheapest(rows),
        target=target,
        sort=sort,
    )
