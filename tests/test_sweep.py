"""``kvplan sweep``: the grid, invalid combinations, sorting, the cheapest row, formats.

Llama-3.1-70B (config): 80 layers, 64 attention heads, 8 KV heads x 128, bf16.
On one TP rank a layer holds 2 x (8 / tp) x 128 x dtype_bytes bytes per token;
a PP stage holds 80 / pp layers; a block is 16 tokens.
"""

from __future__ import annotations

import csv
import io

GiB = 1 << 30


def _blocks(available: int, tp: int, pp: int, dtype_bytes: int) -> int:
    """num_blocks by hand: available // (layers per stage x 16 tokens x bytes per token per layer)."""
    per_token_layer = 2 * (8 // tp) * 128 * dtype_bytes
    return available // ((80 // pp) * 16 * per_token_layer)


def test_70b_grid_best_row_by_hand(kvplan):
    doc = kvplan(
        "sweep",
        "llama-3.1-70b",
        "--tp",
        "1,2,4,8",
        "--pp",
        "1,2",
        "--gpu",
        "H100-80GB,H200,A100-80GB",
        "--kv-cache-dtype",
        "auto,fp8",
        "--max-model-len",
        "32768",
        "--min-concurrency",
        "4",
        "--format",
        "json",
    ).json()
    # 4 x 2 x 3 x 2 combinations, each either a row or an invalid entry.
    assert len(doc["rows"]) + len(doc["invalid"]) == 48
    # One GPU cannot hold the weights: 70.6e9 params x 2 B = 131.4 GiB, more than even
    # an H200's 139.80 GiB x 0.92 = 128.6 GiB; so every 1-GPU combination is invalid.
    one_gpu = [i for i in doc["invalid"] if i["tp"] * i["pp"] == 1]
    assert len(one_gpu) == 6 and all("no memory left" in i["reason"] for i in one_gpu)
    assert all(r["gpus"] > 1 for r in doc["rows"])
    # Every row's figures by hand from its KV memory per worker.
    for r in doc["rows"]:
        dtype_bytes = 1 if r["kv_cache_dtype"] == "fp8" else 2
        blocks = _blocks(r["available_kv_bytes"], r["tp"], r["pp"], dtype_bytes)
        assert r["num_blocks"] == blocks
        # 32768 tokens need 2048 blocks; tokens = int(blocks / 2048 x 32768) = blocks x 16.
        assert r["max_concurrency"] == round(blocks / 2048, 4)
        assert r["kv_cache_tokens"] == blocks * 16
        assert r["meets_target"] == (r["fits"] and blocks / 2048 >= 4)
    # The cheapest: fewest GPUs (tp x pp), then most tokens, among rows reaching 4x.
    meeting = [r for r in doc["rows"] if r["meets_target"]]
    fewest = min(r["gpus"] for r in meeting)
    best = max((r for r in meeting if r["gpus"] == fewest), key=lambda r: r["kv_cache_tokens"])
    assert doc["best"] == best
    # Two H200s with an fp8 cache: 139.80 GiB leaves the most room, fp8 halves the bytes.
    assert (best["gpus"], best["gpu"], best["kv_cache_dtype"]) == (2, "H200", "fp8")
    assert best["kv_cache_tokens"] >= 4 * 32768


def test_exact_memory_grid_every_figure_by_hand(kvplan):
    # llama-3.1-8b: 32 layers, 8 KV heads x 128; 20 GiB per worker, 131072 tokens per request.
    doc = kvplan(
        "sweep",
        "llama-3.1-8b",
        "--kv-cache-memory",
        "20GiB",
        "--tp",
        "1,2",
        "--pp",
        "1,2",
        "--kv-cache-dtype",
        "auto,fp8",
        "--min-kv-tokens",
        "300000",
        "--format",
        "json",
    ).json()
    assert doc["invalid"] == []
    got = {(r["tp"], r["pp"], r["kv_cache_dtype"]): r["num_blocks"] for r in doc["rows"]}
    # 20 GiB // (32/pp layers x 16 x 2 x 8/tp x 128 x bytes): bf16 TP1 PP1 -> 10240, each
    # halving of bytes per block (TP2, PP2, fp8) doubles it.
    assert got == {
        (1, 1, "auto"): 10240,
        (1, 1, "fp8"): 20480,
        (2, 1, "auto"): 20480,
        (1, 2, "auto"): 20480,
        (2, 1, "fp8"): 40960,
        (1, 2, "fp8"): 40960,
        (2, 2, "auto"): 40960,
        (2, 2, "fp8"): 81920,
    }
    # Default sort: most tokens first.  tokens = blocks x 16 (131072 is a multiple of 16).
    tokens = [r["kv_cache_tokens"] for r in doc["rows"]]
    assert tokens == sorted(tokens, reverse=True) and tokens[0] == 81920 * 16
    # 300,000 tokens: TP1 PP1 fp8 has 20480 x 16 = 327,680 -> the cheapest (1 GPU).
    assert (doc["best"]["tp"], doc["best"]["pp"], doc["best"]["kv_cache_dtype"]) == (1, 1, "fp8")
    assert doc["best"]["kv_cache_tokens"] == 327680


def test_invalid_combinations_are_listed_with_the_reason(kvplan):
    doc = kvplan(
        "sweep",
        "llama-3.1-70b",
        "--kv-cache-memory",
        "20GiB",
        "--tp",
        "3,8",
        "--pp",
        "1,128",
        "--format",
        "json",
    ).json()
    assert [(r["tp"], r["pp"]) for r in doc["rows"]] == [(8, 1)]
    reasons = {(i["tp"], i["pp"]): i["reason"] for i in doc["invalid"]}
    assert "64 attention heads are not divisible by tensor parallel size 3" in reasons[(3, 1)]
    assert "larger than the 80 layers" in reasons[(8, 128)]


def test_sort_orders(kvplan):
    args = (
        "sweep",
        "llama-3.1-8b",
        "--kv-cache-memory",
        "20GiB",
        "--tp",
        "1,2,4",
        "--kv-cache-dtype",
        "auto,fp8",
    )
    by_gpus = kvplan(*args, "--sort", "gpus", "--format", "json").json()["rows"]
    assert [r["gpus"] for r in by_gpus] == sorted(r["gpus"] for r in by_gpus)
    by_conc = kvplan(*args, "--sort", "concurrency", "--format", "json").json()["rows"]
    conc = [r["max_concurrency"] for r in by_conc]
    assert conc == sorted(conc, reverse=True)
    # TP4 fp8: 20 GiB // (32 x 16 x 2 x 2 x 128 x 1) = 81920 blocks; 8192 per request -> 10x.
    assert conc[0] == 10.0


def test_csv_markdown_and_table(kvplan):
    args = ("sweep", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--tp", "1,2,3", "--min-concurrency", "2")
    rows = list(csv.DictReader(io.StringIO(kvplan(*args, "--format", "csv").stdout)))
    assert len(rows) == 3
    assert [r["best"] for r in rows] == ["True", "False", ""]  # TP2: 2.5x is the only one >= 2x
    assert rows[0]["tp"] == "2" and rows[0]["max_concurrency"] == "2.5"
    assert "not divisible" in rows[2]["invalid_reason"]
    md = kvplan(*args, "--format", "markdown").stdout
    assert "| **2** | **1** | **2** |" in md
    assert "cheapest meeting concurrency >= 2x and max_model_len fits: tp=2 pp=1" in md
    table = kvplan(*args)
    assert table.code == 0 and "tp=2 pp=1" in table.stdout and "1 invalid combinations" in table.stdout


def test_bad_input_exits_2(kvplan):
    out = kvplan("sweep", "llama-3.1-8b", "--tp", "1,2")
    assert out.code == 2 and "no memory figure" in out.stderr
    out = kvplan("sweep", "llama-3.1-8b", "--gpu", "H100-80GB,TPU")
    assert out.code == 2 and "unknown GPU" in out.stderr
    out = kvplan("sweep", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--tp", "1,,2")
    assert out.code == 2 and "--tp" in out.stderr
    out = kvplan("sweep", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--kv-cache-dtype", "int3")
    assert out.code == 2 and "int3" in out.stderr
