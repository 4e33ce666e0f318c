"""What an operator meets in the first hour: contradictions refused, bad paths named, and every
table readable at 80 columns.

Figures: Llama-3.1-8B (32 layers x 8 KV heads x 128, bf16) holds 32 x 16 x 2 x 8 x 128 x 2 B =
2 MiB per 16-token block on one GPU.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kvplan.cli.options import SERVING

MiB = 1 << 20


def test_a_refused_start_logs_no_capacity(kvplan):
    # 1 GiB holds 512 blocks = 8,192 tokens; 131,072 do not fit, so vLLM raises in its fit
    # check (kv_cache_planning.get_kv_cache_configs) before it logs "GPU KV cache size".
    out = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "1GiB")
    assert out.code == 0
    assert "vLLM would refuse to start" in out.stdout
    assert "vLLM logs:" not in out.stdout and "GPU KV cache size" not in out.stdout
    assert "(vLLM logs none: it refuses to start)" in out.stdout
    doc = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "1GiB", "--format", "json").json()
    assert doc["log_lines"] == [] and doc["max_model_len"]["fits"] is False


def test_an_override_above_the_memory_is_called_out(kvplan):
    # 100,000 blocks x 2 MiB = 195.31 GiB allocated per worker against 1 GiB available:
    # vLLM's check runs on the override's memory (it "fits"), then the allocation is 194.31 GiB over.
    out = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "1GiB", "--num-gpu-blocks-override", "100000")
    assert out.code == 0
    assert "over 194.31 GiB" in out.stdout
    assert "-194.31 GiB" not in out.stdout
    # 1 GiB holds 1 GiB / 2 MiB = 512 blocks.
    assert "num_gpu_blocks_override 100,000 is beyond the KV cache memory (stage 0 holds 512 blocks)" in (
        " ".join(out.stdout.split())
    )


def test_conflicting_flags_are_an_error(kvplan):
    args = ("check", "llama-3.1-8b", "--kv-cache-memory", "20GiB")
    out = kvplan(*args, "--max-model-len-must-fit", "--max-model-len-may-not-fit")
    assert out.code == 2
    assert "--max-model-len-must-fit and --max-model-len-may-not-fit conflict" in out.stderr
    out = kvplan(
        "plan", "llama-3.1-8b", "--tp", "2", "--tensor-parallel-size", "4", "--kv-cache-memory", "1GiB"
    )
    assert out.code == 2 and "--tp is given twice, with different values (2 and 4)" in out.stderr
    # The same value twice is no conflict.
    assert kvplan("plan", "llama-3.1-8b", "--tp", "2", "--tp", "2", "--kv-cache-memory", "20GiB").code == 0
    out = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--kv-cache-memory-bytes", "1G")
    assert out.code == 2 and "conflicts with 'kv_cache_memory'" in out.stderr


def test_may_not_fit_says_it_is_not_required(kvplan):
    out = kvplan("check", "llama-3.1-8b", "--kv-cache-memory", "1GiB", "--max-model-len-may-not-fit")
    assert out.code == 0
    assert "does not fit" in out.stdout and "not required" in out.stdout


def test_a_sweep_where_nothing_runs_exits_2_with_the_reasons(kvplan):
    out = kvplan("sweep", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--tp", "3,5", "--pp", "1,2")
    assert out.code == 2 and out.stdout == ""
    assert "none of the 4 configurations can run" in out.stderr
    assert "2 x field 'tp': 32 attention heads are not divisible by tensor parallel size 3" in out.stderr


def test_a_grid_over_the_limit_is_refused_with_its_count(kvplan):
    args = ("sweep", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--tp", "1,2,4", "--block-size", "16,32")
    out = kvplan(*args, "--max-configurations", "5")
    assert out.code == 2 and "the grid has 6 configurations (3 tp x 2 block_size), more than the limit of 5"
    assert "--max-configurations 6" in out.stderr
    assert kvplan(*args, "--max-configurations", "6", "--format", "json").code == 0


def test_sweep_counts_gpus_as_tp_pp_dp(kvplan):
    doc = kvplan(
        "sweep", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--tp", "2", "--pp", "2", "--dp", "1,3",
        "--format", "json",
    ).json()  # fmt: skip
    assert sorted((r["dp"], r["gpus"]) for r in doc["rows"]) == [(1, 4), (3, 12)]
    # DP replicates the engine: the same blocks per worker either way.
    assert len({r["num_blocks"] for r in doc["rows"]}) == 1


def test_check_and_sweep_take_every_serving_option(kvplan):
    # The options are declared once (cli/options.py SERVING) and given to every command.
    for command in ("plan", "check", "sweep"):
        text = kvplan(command, "--help").stdout
        for option in SERVING:
            first = option.flags[0].split("/")[0]
            assert first in text, (command, first)


def test_model_paths_are_named_not_guessed(kvplan, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = kvplan("plan", "models/my.yaml", "--kv-cache-memory", "1GiB")
    assert out.code == 2 and "models/my.yaml: no such file or directory" in out.stderr
    assert "Hugging Face" not in out.stderr
    # ../gpus must never read the GPU presets as a model.
    out = kvplan("plan", "../gpus", "--kv-cache-memory", "1GiB")
    assert out.code == 2 and "no such file or directory" in out.stderr
    out = kvplan("plan", "gpus", "--kv-cache-memory", "1GiB")
    assert out.code == 2 and "unknown model 'gpus'" in out.stderr
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    out = kvplan("plan", "a", "--kv-cache-memory", "1GiB")
    assert out.code == 2 and "symbolic link to nothing (a dangling link, or a loop)" in out.stderr


def test_unreadable_directories_exit_2(kvplan, tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    real_is_file = Path.is_file

    def denied(self: Path) -> bool:
        if self.parent == model:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    # Root reads any directory, so the denial is simulated where pathlib stats the file.
    monkeypatch.setattr(Path, "is_file", denied)
    out = kvplan("plan", str(model), "--kv-cache-memory", "1GiB")
    assert out.code == 2 and "cannot read it (permission denied)" in out.stderr
    assert "Traceback" not in out.stderr
    # A hub cache snapshot that cannot be read.
    cache = tmp_path / "hub"
    snapshots = cache / "models--org--name" / "snapshots"
    snapshots.mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    real_glob = Path.glob

    def glob_denied(self: Path, pattern: str):  # type: ignore[no-untyped-def]
        if self == snapshots:
            raise PermissionError(13, "Permission denied", str(self))
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", glob_denied)
    out = kvplan("plan", "org/name", "--kv-cache-memory", "1GiB")
    assert out.code == 2 and "cannot read the Hugging Face cache (Permission denied)" in out.stderr


def test_preset_and_gpu_lists_in_markdown(kvplan):
    md = kvplan("gpus", "--format", "markdown").stdout
    assert md.startswith(
        "### GPU presets\n\n| name | total bytes | GiB | vendor | arch |\n|---|---:|---:|---|---|\n"
    )
    # H100 80GB SXM: torch reports 81,090 MiB (presets/gpus.yaml's source).
    assert f"| H100-80GB | {81090 * MiB:,} | 79.19 |" in md
    md = kvplan("presets", "--format", "markdown").stdout
    assert "| llama-3.1-8b | meta-llama/Llama-3.1-8B-Instruct | LlamaForCausalLM |" in md
    assert "┃" not in md and "│" not in md


def test_version(kvplan):
    from importlib.metadata import version

    out = kvplan("--version")
    assert out.code == 0 and out.stdout == f"kvplan {version('kvplan')} (reproduces vLLM 0.10.0 to 0.33.0)\n"


# --- 80 columns ----------------------------------------------------------------------------

NARROW = [
    ("plan", "gemma-3-27b", "--tp", "8", "--kv-cache-memory", "40GiB"),
    ("plan", "gemma-3-27b", "--tp", "8", "--kv-cache-memory", "40GiB", "--vllm-version", "0.19"),
    ("plan", "llama-3.1-8b", "--gpu", "H100-80GB"),
    ("plan", "deepseek-v3", "--tp", "8", "--gpu", "H200"),
    ("plan", "qwen3-next-80b-a3b", "--tp", "4", "--pp", "2", "--gpu", "H100-80GB"),
    ("plan", "llama-3.1-8b", "--kv-cache-memory", "1GiB", "--num-gpu-blocks-override", "100000"),
    ("sweep", "llama-3.1-70b", "--tp", "1,2,4,8", "--pp", "1,2", "--gpu", "H100-80GB,H200,A100-80GB",
     "--kv-cache-dtype", "auto,fp8", "--max-model-len", "32768", "--min-concurrency", "4"),
    ("sweep", "llama-3.1-8b", "--tp", "1,2,4,8", "--pp", "1,2", "--dp", "1,2", "--gpu", "H100-80GB,H200",
     "--kv-cache-dtype", "auto,fp8", "--block-size", "16,32", "--max-model-len", "8192,32768"),
    ("presets",),
    ("gpus",),
]  # fmt: skip


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("args", NARROW, ids=lambda a: " ".join(a[:2]))
def test_no_line_is_wider_than_the_terminal_and_no_figure_is_cut(kvplan, monkeypatch, args, width):
    monkeypatch.setenv("COLUMNS", str(width))
    out = kvplan(*args)
    assert out.code == 0, out.stderr
    for line in out.stdout.splitlines():
        assert len(line) <= width, line
        assert "…" not in line, line


def test_sweep_headers_stay_whole_at_80_columns(kvplan, monkeypatch):
    # rich cuts a header that does not fit its column without a mark ("fit" for "fits").
    monkeypatch.setenv("COLUMNS", "80")
    out = kvplan(*NARROW[6])
    header = next(line for line in out.stdout.splitlines() if line.lstrip().startswith("TP"))
    assert header.split() == [
        "TP",
        "PP",
        "GPUs",
        "GPU",
        "KV",
        "dtype",
        "blocks",
        "KV",
        "tokens",
        "conc.",
        "fits",
    ]


def test_presets_read_only_preset_files():
    from kvplan.inputs import presets

    assert presets.find_model("../gpus") is None  # presets/gpus.yaml is not a model
    assert presets.find_model("models/../../gpus") is None
    assert presets.find_model("LLAMA-3.1-8B") is not None  # names are case-insensitive


def test_every_figure_of_the_plan_survives_80_columns(kvplan, monkeypatch):
    # The JSON holds the figures; the 80-column table shows each whole.
    doc = kvplan("plan", "gemma-3-27b", "--tp", "8", "--kv-cache-memory", "40GiB", "--format", "json").json()
    monkeypatch.setenv("COLUMNS", "80")
    text = kvplan("plan", "gemma-3-27b", "--tp", "8", "--kv-cache-memory", "40GiB").stdout
    branches = doc["stages"][0]["branches"]
    for figure in (
        doc["num_blocks"],
        doc["kv_cache_tokens"],
        branches["uniform_type"]["num_blocks"],
        branches["uniform_type"]["bytes_per_block"],
        branches["shared_pool"]["bytes_per_block"],
    ):
        assert re.search(rf"(?<![\d,]){figure:,}(?![\d,])", text), figure


@pytest.mark.parametrize("command", ["plan", "check", "sweep", "log", "probe"])
def test_help_names_every_option_whole_at_80_columns(kvplan, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    out = kvplan(command, "--help")
    assert out.code == 0
    for line in out.stdout.splitlines():
        assert len(line) <= 80, line
        assert "…" not in line, line
    if command in ("plan", "check", "sweep"):
        for option in SERVING:
            for flag in option.flags:
                for name in flag.split("/"):
                    assert name in out.stdout, name


def test_not_a_terminal_honours_columns(kvplan, monkeypatch):
    # 140 columns hold the stage table with both branches side by side; without COLUMNS
    # (80) the branches become rows of their own table.
    monkeypatch.setenv("COLUMNS", "140")
    wide = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB").stdout
    assert any("uniform-type" in line and "shared-pool" in line for line in wide.splitlines())
    assert "Both sizing branches" not in wide
    monkeypatch.delenv("COLUMNS")
    narrow = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB").stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "Both sizing branches, side by side" in narrow


def test_columns_from_the_environment_are_read_at_run_time(monkeypatch):
    # The CLI reads COLUMNS when it prints, not at import.
    from kvplan.cli.app import output_width

    monkeypatch.setenv("COLUMNS", "91")
    assert output_width() == 91
    monkeypatch.setenv("COLUMNS", "not a number")
    assert output_width() == 80


def test_fit_counts_a_figure_columns_header_whole():
    # "fits" over cells "yes": the column needs 4 characters plus 3 of box and padding, and
    # the table's left edge 1: 8.  A wrapping column may fold down to MIN_WRAP (14).
    from kvplan.render.fit import Col, needed_width

    assert needed_width([Col("fits")], [["yes"]]) == 8
    assert needed_width([Col("names", wrap=True)], [["x" * 40]]) == 1 + 14 + 3


def _mla_yaml(path: Path, layer: str) -> str:
    path.write_text(
        "architectures: [DeepseekV3ForCausalLM]\nmax_position_embeddings: 32768\ntorch_dtype: bfloat16\n"
        f"layers:\n  - {{name: model.layers.0.self_attn.attn, {layer}}}\n"
        f"  - {{name: model.layers.1.self_attn.attn, {layer}}}\n"
    )
    return str(path)


def test_explicit_mla_layers_take_vllms_spelling(kvplan, tmp_path):
    # DeepSeek-V3's latent row: kv_lora_rank 512 + qk_rope_head_dim 64 = 576 wide, one head
    # (vLLM's MLAAttentionSpec: num_kv_heads=1, head_size=576); both spellings plan alike.
    ours = _mla_yaml(tmp_path / "a.yaml", "type: mla, kv_lora_rank: 512, qk_rope_head_dim: 64")
    vllms = _mla_yaml(tmp_path / "b.yaml", "type: mla, num_kv_heads: 1, head_size: 576")
    both = _mla_yaml(
        tmp_path / "c.yaml", "type: mla, kv_lora_rank: 512, qk_rope_head_dim: 64, head_size: 576"
    )
    docs = [
        kvplan("plan", p, "--kv-cache-memory", "1GiB", "--format", "json").json() for p in (ours, vllms, both)
    ]
    layers = [d["layers"][0] for d in docs]
    # 0.33 on Hopper (H100 assumed) with a 16-bit cache: 16-token blocks; 16 x 576 x 2 B = 18,432 B.
    assert {(x["num_kv_heads"], x["head_size"], x["page_size_bytes"]) for x in layers} == {(1, 576, 18432)}
    assert len({d["num_blocks"] for d in docs}) == 1
    bad = _mla_yaml(tmp_path / "d.yaml", "type: mla, kv_lora_rank: 512, qk_rope_head_dim: 64, head_size: 512")
    out = kvplan("plan", bad, "--kv-cache-memory", "1GiB")
    assert (
        out.code == 2
        and "layers[0].head_size': must be kv_lora_rank + qk_rope_head_dim = 512 + 64 = 576" in out.stderr
    )
    bad = _mla_yaml(tmp_path / "e.yaml", "type: mla, num_kv_heads: 2, head_size: 576")
    out = kvplan("plan", bad, "--kv-cache-memory", "1GiB")
    assert out.code == 2 and "must be 1: an MLA layer caches one latent row per token" in out.stderr


def test_top_level_help_cuts_no_command_summary(kvplan, monkeypatch):
    # click cuts a command's summary at 45 characters with "..."; each command names its own.
    monkeypatch.setenv("COLUMNS", "80")
    out = kvplan("--help").stdout
    commands = out.split("Commands:")[1].splitlines()
    from kvplan.cli.app import COMMANDS

    assert len([c for c in commands if c.strip()]) == len(COMMANDS) == 8
    assert not any(c.rstrip().endswith("...") for c in commands)
