"""Runs every scenario through one vLLM release's planner; writes one fixture.

Usage (inside the release's virtual environment; run.py does this):

    python worker.py SCENARIOS_JSON OUTPUT_JSON [--only ID,ID]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO")

import release_adapter  # noqa: E402
import standin  # noqa: E402

TOKENS_RE = re.compile(r"GPU KV cache size: ([\d,]+) tokens")
CONCURRENCY_RE = re.compile(r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001
            self.lines.append(str(record.msg))


def _reset_once_caches() -> None:
    """vLLM logs some lines once per process; every scenario must see them."""
    import vllm.logger as vlog

    for name in dir(vlog):
        fn = getattr(vlog, name)
        if name.startswith("_print_") and hasattr(fn, "cache_clear"):
            fn.cache_clear()


def _log_summary(lines: list[str]) -> dict[str, Any]:
    tokens = concurrency = None
    for line in lines:
        if tokens is None and (m := TOKENS_RE.search(line)):
            tokens = int(m.group(1).replace(",", ""))
        if concurrency is None and (m := CONCURRENCY_RE.search(line)):
            concurrency = float(m.group(1))
    return {
        "gpu_kv_cache_size_tokens": tokens,
        "max_concurrency": concurrency,
        "lines": lines,
    }


def run_scenario(release: release_adapter.Release, scenario: dict[str, Any]) -> dict[str, Any]:
    access = standin.AccessLog()
    result: dict[str, Any] = {
        "status": "ok",
        "error": None,
        "max_model_len": None,
        "kv_cache_groups": [],
        "workers": [],
        "scheduler": None,
        "capacity": None,
        "log": None,
    }
    handler = _Collect()
    vlogger = logging.getLogger("vllm")
    vlogger.addHandler(handler)
    old_level = vlogger.level
    vlogger.setLevel(logging.INFO)
    _reset_once_caches()
    try:
        try:
            vllm_config = standin.build_vllm_config(scenario, access)
            specs = [
                {name: release.build_spec(name, layer) for name, layer in w["layers"].items()}
                for w in scenario["workers"]
            ]
        except release_adapter.Unsupported as exc:
            result.update(status="unsupported", error={"type": "Unsupported", "message": str(exc)})
            return result
        memory = [int(w["available_memory"]) for w in scenario["workers"]]
        configured_len = vllm_config.model_config.max_model_len
        try:
            configs = release.plan(vllm_config, specs, memory)
        except Exception as exc:  # noqa: BLE001 - the error is the result
            # A gap in the config stand-in is the harness's fault, not vLLM's answer.
            gap = isinstance(exc, AttributeError) and "config stand-in" in str(exc)
            result.update(
                status="harness_error" if gap else "error",
                error={
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "where": _where(exc),
                },
            )
            # Some releases leave their binary search's last probe in
            # model_config.max_model_len when they raise; keep both.
            result["max_model_len"] = configured_len
            result["max_model_len_after_error"] = vllm_config.model_config.max_model_len
            return result
        result["max_model_len"] = vllm_config.model_config.max_model_len
        workers = []
        for cfg in configs:
            entry = release_adapter.to_json(cfg)
            entry["capacity"] = release.capacity(vllm_config, cfg) or None
            workers.append(entry)
        result["workers"] = workers
        result["kv_cache_groups"] = workers[0]["kv_cache_groups"] if workers else []
        try:
            sched = release.scheduler_view(vllm_config, configs)
        except Exception as exc:  # noqa: BLE001
            result["scheduler"] = {
                "error": {"type": type(exc).__name__, "message": str(exc), "where": _where(exc)}
            }
        else:
            if sched is not None:
                result["scheduler"] = {
                    "num_blocks": sched.num_blocks,
                    "block_size": vllm_config.cache_config.block_size,
                }
                result["capacity"] = release.capacity(vllm_config, sched) or None
        if result["capacity"] is None and workers:
            result["capacity"] = workers[0]["capacity"]
        return result
    finally:
        vlogger.removeHandler(handler)
        vlogger.setLevel(old_level)
        if result.get("log") is None:
            result["log"] = _log_summary(handler.lines)
        result["config_access"] = access.as_dict()


def _where(exc: BaseException) -> str:
    """The innermost vLLM frame that raised, as module:function:line."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if "/vllm/" in frame.filename:
            short = frame.filename.split("/vllm/", 1)[1]
            return f"vllm/{short}:{frame.name}:{frame.lineno}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenarios")
    parser.add_argument("output")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    corpus = json.loads(Path(args.scenarios).read_text())
    only = {s for s in args.only.split(",") if s}
    release = release_adapter.Release()
    results: dict[str, Any] = {}
    for scenario in corpus["scenarios"]:
        if only and scenario["id"] not in only:
            continue
        try:
            results[scenario["id"]] = run_scenario(release, copy.deepcopy(scenario))
        except Exception as exc:  # noqa: BLE001 - one scenario never stops the rest
            results[scenario["id"]] = {
                "status": "harness_error",
                "error": {"type": type(exc).__name__, "message": str(exc), "where": _where(exc)},
                "traceback": traceback.format_exc(),
            }
    fixture = {
        "vllm_version": release.version,
        "schema": 1,
        "torch_version": release_adapter.torch.__version__,
        "results": results,
    }
    Path(args.output).write_text(json.dumps(fixture, indent=1, sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
