"""Budgets for ``kvplan check``: what a plan must deliver, and the verdict on each.

A budget comes from the model YAML's ``budget:`` section, each key replaced by
a flag when given.  ``evaluate`` compares one finished ``Plan`` with a budget
and returns one ``Verdict`` per budget key; ``kvplan.render.check`` turns
verdicts into text lines, JUnit XML and Markdown.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kvplan.api import Plan
from kvplan.errors import InputError
from kvplan.records import record
from kvplan.sizes import human, parse_size

BUDGET_KEYS: tuple[str, ...] = (
    "min_kv_tokens",
    "min_concurrency",
    "max_model_len_must_fit",
    "min_num_blocks",
    "max_kv_cache_memory",
)


@record(frozen=True)
class Budget:
    """Limits a plan must meet; None means "no limit on this".

    min_kv_tokens: KV cache tokens (as vLLM logs "GPU KV cache size").
    min_concurrency: requests of ``max_model_len`` tokens served at once.
    max_model_len_must_fit: one request of ``max_model_len`` tokens must fit.
    min_num_blocks: KV cache blocks every worker allocates.
    max_kv_cache_memory: bytes the KV cache may take on one worker.
    """

    min_kv_tokens: int | None = None
    min_concurrency: float | None = None
    max_model_len_must_fit: bool | None = None
    min_num_blocks: int | None = None
    max_kv_cache_memory: int | None = None

    def is_empty(self) -> bool:
        """True when no limit is set."""
        return all(getattr(self, k) is None for k in BUDGET_KEYS)


@record(frozen=True)
class Verdict:
    """One budget key judged on one model: the figure measured and the limit."""

    model: str
    key: str
    passed: bool
    measured: int | float | bool
    limit: int | float | bool
    text: str  # "163,840 KV cache tokens >= 100,000"

    def line(self) -> str:
        """The verdict as one line of text."""
        return f"{'PASS' if self.passed else 'FAIL'}  {self.model}  {self.key}: {self.text}"

    def as_dict(self) -> dict[str, Any]:
        """The verdict as JSON."""
        return {
            "model": self.model,
            "budget": self.key,
            "passed": self.passed,
            "measured": self.measured,
            "limit": self.limit,
            "text": self.text,
        }


def _whole(value: Any, key: str, source: str | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().replace("_", "").isdigit():
            return int(value.strip().replace("_", ""))
        raise InputError("must be a whole number", source=source, field=key, value=value)
    if value < 0:
        raise InputError("must not be negative", source=source, field=key, value=value)
    return value


def _number(value: Any, key: str, source: str | None) -> float:
    if isinstance(value, bool):
        raise InputError("must be a number", source=source, field=key, value=value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError("must be a number", source=source, field=key, value=value) from None
    if not number >= 0 or number == float("inf"):
        raise InputError("must be a finite number >= 0", source=source, field=key, value=value)
    return number


def parse_budget(raw: dict[str, Any], source: str | None, *, prefix: str = "budget.") -> Budget:
    """Validate a ``budget:`` mapping (or flags); unknown keys are errors naming ``budget.<key>``."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        field = f"{prefix}{key}"
        if key not in BUDGET_KEYS:
            raise InputError(
                "unknown budget key", source=source, field=field, hint="known: " + ", ".join(BUDGET_KEYS)
            )
        if value is None:
            continue
        if key in ("min_kv_tokens", "min_num_blocks"):
            values[key] = _whole(value, field, source)
        elif key == "min_concurrency":
            values[key] = _number(value, field, source)
        elif key == "max_model_len_must_fit":
            if not isinstance(value, bool):
                raise InputError("must be true or false", source=source, field=field, value=value)
            values[key] = value
        else:
            values[key] = parse_size(value, field=field, source=source)
    return Budget(**values)


def merge(yaml_budget: Budget, flags: Budget) -> Budget:
    """The budget in force: each YAML limit replaced by the flag when one is given."""
    return Budget(
        **{
            k: getattr(flags, k) if getattr(flags, k) is not None else getattr(yaml_budget, k)
            for k in BUDGET_KEYS
        }
    )


def _at_least(model: str, name: str, measured: float, limit: float, shape: str) -> Verdict:
    """A lower-bound budget; ``shape`` formats (measured, ">=" or "<", limit)."""
    ok = measured >= limit
    return Verdict(model, name, ok, measured, limit, shape.format(measured, ">=" if ok else "<", limit))


def evaluate(model: str, plan: Plan, budget: Budget) -> list[Verdict]:
    """One verdict per limit set in ``budget``, judged on a finished plan."""
    out: list[Verdict] = []
    length = plan.max_model_len
    if budget.min_kv_tokens is not None:
        tokens = plan.kv_cache_tokens
        out.append(
            _at_least(model, "min_kv_tokens", tokens, budget.min_kv_tokens, "{:,} KV cache tokens {} {:,}")
        )
    if budget.min_concurrency is not None:
        conc = plan.max_concurrency or 0.0
        shape = "{:.2f}x concurrency at " + f"{length:,}" + " tokens per request {} {:g}x"
        verdict = _at_least(model, "min_concurrency", conc, budget.min_concurrency, shape)
        out.append(replace(verdict, measured=round(conc, 4)))
    if budget.max_model_len_must_fit is not None:
        fits = plan.fit.fits
        ok = fits or not budget.max_model_len_must_fit
        if fits:
            text = f"max_model_len {length:,} fits"
        else:
            text = (
                f"max_model_len {length:,} does not fit "
                f"(estimated maximum {plan.fit.estimated_max_model_len or 0:,} tokens)"
            )
        if not budget.max_model_len_must_fit:
            text += "; not required (max_model_len_must_fit is false)"
        out.append(Verdict(model, "max_model_len_must_fit", ok, fits, budget.max_model_len_must_fit, text))
    if budget.min_num_blocks is not None:
        blocks = plan.num_blocks
        out.append(_at_least(model, "min_num_blocks", blocks, budget.min_num_blocks, "{:,} blocks {} {:,}"))
    if budget.max_kv_cache_memory is not None:
        used = plan.kv_cache_bytes
        ok = used <= budget.max_kv_cache_memory
        rel = "<=" if ok else ">"
        text = f"KV cache {human(used)} per worker {rel} {human(budget.max_kv_cache_memory)}"
        out.append(Verdict(model, "max_kv_cache_memory", ok, used, budget.max_kv_cache_memory, text))
    return out
