"""Encoder-decoder models (Whisper) against vLLM's own model code.

Each decoder layer keeps a self-attention cache (FullAttentionSpec) and a
cross-attention cache (CrossAttentionSpec) under vLLM's layer names; the two
kinds form two KV cache groups.  A request's cross-attention need is the
scheduler's encoder budget (``max_num_encoder_input_tokens`` =
``max_num_batched_tokens``), its self-attention need ``max_model_len`` (Whisper:
``max_target_positions`` = 448).  Fixtures: tests/oracle/fixtures/encdec/.
"""

from __future__ import annotations

import pytest
from oracle_match import cases, check_groups, check_layers, config, served_result

from kvplan import api
from tools.oracle_oldest import extra_runs

FAMILY = "encdec"
RELEASES = ("0.33.0", "0.19.1")
CASES = cases(FAMILY)
# every case on both releases, and on the oldest release serving its architecture
RUNS = [pytest.param(v, c, id=f"{c['id']}-{v}") for v in RELEASES for c in CASES] + [
    pytest.param(v, c, id=f"{c['id']}-{v}") for v, c in extra_runs(FAMILY, RELEASES)
]


@pytest.mark.parametrize(("version", "case"), RUNS)
def test_layers_equal_vllm(version: str, case: dict) -> None:
    check_layers(FAMILY, version, case)


@pytest.mark.parametrize(("version", "case"), RUNS)
def test_groups_and_blocks_equal_vllm(version: str, case: dict) -> None:
    check_groups(FAMILY, version, case)


def test_whisper_large_v3_capacity_counts_the_encoder_budget():
    # whisper-large-v3 TP 1, fp16: 20 heads x 64 x 2 (K, V) x 2 B = 5120 B/token per layer,
    # 32 self + 32 cross layers in two groups of 32: 20 GiB / (32 x 81920 B) = 8192 blocks.
    # One request: self cdiv(448, 16) = 28 blocks + cross cdiv(8192, 16) = 512 blocks,
    # so 8192 / 540 = 15.17 requests, as vLLM 0.33 logs.
    case = next(c for c in CASES if c["id"] == "whisper-large-v3-tp1")
    got = served_result(FAMILY, "0.33.0", case)
    assert got is not None
    vllm_capacity = got[1]["planner"]["capacity"]
    plan = api.plan(config(case), kv_cache_memory="20GiB", max_num_batched_tokens=8192)
    assert plan.max_model_len == 448 and plan.num_blocks == 8192
    assert plan.max_concurrency == pytest.approx(8192 / 540)
    assert plan.max_concurrency == pytest.approx(vllm_capacity["max_concurrency"])
