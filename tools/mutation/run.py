"""Break kvplan on purpose and check that the test suite notices.

    python tools/mutation/run.py              # every mutant
    python tools/mutation/run.py --only pp-split-off-by-one,null-block
    python tools/mutation/run.py --list

Each mutant is a deliberate breakage (a text replacement in one file, or
files removed) applied to a fresh copy of the tracked tree; the test suite
then runs on that copy (``python -m pytest -x -q``) and must FAIL.  A mutant
the suite survives is a gap in the tests, and the script exits 1 naming it.
The tree itself is never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    """One deliberate breakage: replace ``old`` by ``new`` in ``path``, or delete ``remove``."""

    name: str
    what: str
    path: str = ""
    old: str = ""
    new: str = ""
    remove: tuple[str, ...] = ()


def _parity_fixtures_but_one() -> tuple[str, ...]:
    fixtures = sorted((ROOT / "tests" / "parity" / "fixtures").glob("vllm-*.json"))
    return tuple(str(p.relative_to(ROOT)) for p in fixtures[1:])


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "capacity-report-removed",
        "the planner reports no capacity (no tokens, concurrency or log lines)",
        "kvplan/vllm/planner.py",
        "report = capacity(shown[0], logged, usage, behaviour, req.dcp, req.pcp, req.cache_block_size)",
        "report = None",
    ),
    Mutant(
        "refusal-text-changed",
        "vLLM's max_model_len refusal is worded differently",
        "kvplan/vllm/planner.py",
        'f"To serve at least one request with the {who} max seq len ({max_model_len}), "',
        'f"To serve one request with the {who} max seq len ({max_model_len}), "',
    ),
    Mutant(
        "unify-refusal-text-changed",
        "vLLM's page-unification refusal is worded differently",
        "kvplan/vllm/planner.py",
        '"Cannot unify by adjusting block_size."',
        '"Cannot unify the block_size."',
    ),
    Mutant(
        "log-lines-after-first-dropped",
        "only the first capacity log line is kept",
        "kvplan/vllm/planner.py",
        'lines = extra + ((f"{size}, {conc}",) if behaviour.log_style == "one_line" else (size, conc))',
        'lines = (extra + ((f"{size}, {conc}",) if behaviour.log_style == "one_line" else (size, conc)))[:1]',
    ),
    Mutant(
        "parity-fixtures-deleted",
        "22 of the 23 parity fixtures are missing",
        remove=_parity_fixtures_but_one(),
    ),
    Mutant(
        "pp-split-off-by-one",
        "the remainder layers go to the last stages instead of the ones before the last",
        "kvplan/vllm/layout.py",
        "for i in range(2, num_layers % pp + 2):",
        "for i in range(1, num_layers % pp + 1):",
    ),
    Mutant(
        "mamba-align-as-none",
        "Mamba layers never run in align mode (prefix caching ignored)",
        "kvplan/vllm/engine_args.py",
        'mode = "all" if b.mamba_prefix_caching == "modes" and arch in b.mamba_all_archs else "align"',
        'mode = "all" if b.mamba_prefix_caching == "modes" and arch in b.mamba_all_archs else "none"',
    ),
    Mutant(
        "gemma3n-text-built-before-0.11.1",
        "the text-only Gemma 3n is planned on releases whose gemma3n.py fails its own KV-sharing check",
        "kvplan/model/families/sharing.py",
        "if release.behaviour.gemma3n_text_targets_wrapper and prefix != root:",
        "if False:",
    ),
    Mutant(
        "kv-sharing-layers-listed-as-tensor-owners",
        "KV-sharing layers are added to their target tensor's shared_by (vLLM lists only layers with a cache)",
        "kvplan/vllm/planner.py",
        "tensors.append(replace(t, aliased_by=extra) if extra else t)",
        "tensors.append(replace(t, shared_by=t.shared_by + extra) if extra else t)",
    ),
    Mutant(
        "mamba-checkpoint-block-not-counted",
        "an align-mode request holds 2 + speculative state pages, leaving out the prefill checkpoint block",
        "kvplan/vllm/specs.py",
        "pages = 2 + self.num_speculative_blocks + self.num_prefill_checkpoint_blocks",
        "pages = 2 + self.num_speculative_blocks",
    ),
    Mutant(
        "gdn-checkpoints-on-every-gpu",
        "Qwen's gated delta nets export prefill checkpoints whatever GPU runs them (not only on FlashInfer)",
        "kvplan/model/families/mamba.py",
        'return arch == "hopper" or (arch in ("blackwell", "blackwell-consumer") and self.head_k_dim == 128)',
        "return True",
    ),
    Mutant(
        "kv-heads-not-replicated",
        "when TP exceeds the KV heads a rank keeps none (heads // tp) instead of one replicated head",
        "kvplan/model/layers.py",
        '            hint=f"layer {layer}",\n        )\n    return 1\n',
        '            hint=f"layer {layer}",\n        )\n    return 0\n',
    ),
    Mutant(
        "wrapper-prefix-dropped",
        "a multimodal wrapper's layers keep the text model's own names (no language_model. prefix)",
        "kvplan/model/describe.py",
        'prefix = {"prefix": _nested(wrapper.prefix, entry.options.get("prefix"))}',
        "prefix = {}",
    ),
    Mutant(
        "text-config-defaults-ignored",
        "keys a wrapper's text section leaves out are not filled from its config class's defaults",
        "kvplan/model/describe.py",
        "    defaults = TEXT_DEFAULTS.get(model_type, {}) if isinstance(model_type, str) else {}\n    text = {",
        "    defaults = {}\n    text = {",
    ),
    Mutant(
        "mla-sharded-by-tp",
        "the MLA latent row is split over TP ranks instead of replicated",
        "kvplan/vllm/sharding.py",
        "head_size=layer.kv_lora_rank + layer.qk_rope_head_dim,",
        "head_size=(layer.kv_lora_rank + layer.qk_rope_head_dim) // ctx.tp,",
    ),
    Mutant(
        "hidden-over-heads-not-head-dim",
        "head size is always hidden/heads, ignoring head_dim",
        "kvplan/model/config.py",
        'if use_key and cfg.get("head_dim"):',
        "if False:",
    ),
    Mutant(
        "null-block-reserved-twice",
        "the 0.29+ fit check reserves two blocks instead of the one null block",
        "kvplan/vllm/planner.py",
        "available -= per_block[i]",
        "available -= 2 * per_block[i]",
    ),
    Mutant(
        "null-block-not-kept",
        "block 0 is not counted as vLLM's null block",
        "kvplan/vllm/planner.py",
        "return max(self.num_blocks - 1, 0)",
        "return max(self.num_blocks, 0)",
    ),
    Mutant(
        "v1-in-flight-rule-on-v2-runner",
        "the V2 runner keeps V1's concurrent batches (2 without PP, else pp) instead of pp + 1",
        "kvplan/vllm/engine.py",
        "    if asynchronous and v2_model_runner:\n        return pp + 1\n",
        "",
    ),
    Mutant(
        "cross-stage-minimum-dropped",
        "every worker keeps the largest stage count instead of the minimum",
        "kvplan/vllm/planner.py",
        "num_blocks = min(branches[taken].num_blocks for branches, taken in staged)",
        "num_blocks = max(branches[taken].num_blocks for branches, taken in staged)",
    ),
)


def tracked_copy(dest: Path) -> None:
    """Copy what git tracks (and untracked, unignored files) into ``dest``."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listing:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def apply(mutant: Mutant, tree: Path) -> None:
    """Apply one mutant to the copy; raises when its target text is not there (the mutant went stale)."""
    if mutant.path:
        target = tree / mutant.path
        text = target.read_text()
        if text.count(mutant.old) != 1:
            raise SystemExit(
                f"mutant {mutant.name}: the text to replace is not in {mutant.path} exactly once"
            )
        target.write_text(text.replace(mutant.old, mutant.new))
    for name in mutant.remove:
        (tree / name).unlink()


def run_suite(tree: Path, timeout: int) -> tuple[bool, str]:
    """(the suite failed, the last lines of its output)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    return proc.returncode != 0, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per suite run")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only.split(",")]
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:34} {m.what}")
        return 0
    survived = []
    with tempfile.TemporaryDirectory(prefix="kvplan-mutant-") as tmp:
        pristine = Path(tmp) / "pristine"
        tracked_copy(pristine)
        # The unbroken copy must pass, or a "killed" verdict would mean nothing.
        failed, tail = run_suite(pristine, args.timeout)
        if failed:
            print(f"the unmutated copy fails its own tests:\n{tail}")
            return 2
        for mutant in chosen:
            tree = Path(tmp) / mutant.name
            shutil.copytree(pristine, tree)
            apply(mutant, tree)
            started = time.time()
            killed, tail = run_suite(tree, args.timeout)
            verdict = "killed" if killed else "SURVIVED"
            print(
                f"{verdict:8} {mutant.name:34} {time.time() - started:6.1f} s  {tail.splitlines()[-1] if tail else ''}"
            )
            if not killed:
                survived.append(mutant.name)
            shutil.rmtree(tree)
    if survived:
        print("mutants the suite did not notice: " + ", ".join(survived))
        return 1
    print(f"all {len(chosen)} mutants killed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
