"""The plan path stays light: no torch, NVML or other heavy module is imported by it, nor the
modules of the commands not being run, nor rich's table layout (kvplan draws its tables)."""

from __future__ import annotations

import ast
import subprocess
import sys

HEAVY = (
    "torch",
    "pynvml",
    "kvplan.memory.probe",
    "kvplan.workflows.sweep",
    "kvplan.workflows.logs",
    "kvplan.model.families.mamba",
    "kvplan.workflows.verify",
    "kvplan.workflows.vllm_meta",
    "vllm",
    "kvplan.cli.check",
    "kvplan.cli.sweep",
    "kvplan.cli.log",
    "kvplan.inputs.vllm_args",
    "rich.table",
    "json",
    "kvplan.inputs.speculative",
    "kvplan.model.draft",
    "kvplan.vllm.drafting",
    # checkpoint reading, quantization method tables and the other model families
    "kvplan.memory.checkpoint",
    "kvplan.memory.quant_methods",
    "kvplan.model.explicit",
    "kvplan.model.wrappers",
    "kvplan.model.families.backend",
    "kvplan.model.families.mla",
    "kvplan.model.families.recurrent",
    "kvplan.model.families.sliding",
    "kvplan.workflows.check",
    # the renderers of the other formats
    "kvplan.render.document",
    "kvplan.render.markdown",
    "kvplan.render.explain",
)


def test_plan_imports_nothing_heavy():
    code = (
        "import sys, io, contextlib\n"
        "from kvplan.cli import main\n"
        "sys.argv = ['kvplan', 'plan', 'llama-3.1-8b', '--gpu', 'H100-80GB']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    # What the bare imports bring in is not the plan path's doing (typer 0.16 imports rich.table).
    # The lists are printed as reprs: importing json to print them would hide json itself.
    base = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, typer, rich.console, yaml; print([m for m in {HEAVY!r} if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    already = set(ast.literal_eval(base.stdout.strip()))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(ast.literal_eval(proc.stdout.strip().splitlines()[-1])) - already == set()
