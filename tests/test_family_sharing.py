"""Cross-layer KV sharing (Gemma 3n, Gemma 4) against vLLM's own model code.

vLLM's model runner gives a layer with a ``kv_sharing_target_layer_name`` no
spec of its own, so the oracle fixtures (tests/oracle/fixtures/sharing/) list
only the layers that keep a cache; kvplan must list the same ones with the same
specs (Gemma 4's full layers with their own head size and KV heads), and plan
the same groups and blocks.  Which layer a shared layer reads is checked here
against vLLM's rules (gemma3n.py, gemma4.py), and the workers' view (the
shared layer in its target's group and tensor, v1/worker/utils.py
``add_kv_sharing_layers_to_kv_cache_groups``) against the plan.
"""

from __future__ import annotations

import pytest
from oracle_match import cases, check_groups, check_layers, config

from kvplan import api
from tools.oracle_oldest import extra_runs

FAMILY = "sharing"
RELEASES = ("0.33.0", "0.19.1")
CASES = cases(FAMILY)
# Cases the oracle's environments cannot build: Gemma 3n's vision tower needs timm,
# which the 0.19.1 environment lacks (0.33.0's fixture of them was run with timm 1.0.31
# installed --no-deps beside the environment, on PYTHONPATH); the 0.19.1 environment's
# transformers (4.57) has no Gemma 4 config (5.5+ has).
GAPS = {
    ("0.19.1", case["id"]): "timm missing in the oracle environment"
    for case in CASES
    if case["config"] == "gemma-3n-e4b-defaults"
} | {
    ("0.19.1", case["id"]): "transformers 4.57 in the 0.19.1 oracle environment"
    for case in CASES
    if case["config"].startswith("gemma-4")
}


# every case on both releases, and on the oldest release serving its architecture
RUNS = [pytest.param(v, c, id=f"{c['id']}-{v}") for v in RELEASES for c in CASES] + [
    pytest.param(v, c, id=f"{c['id']}-{v}") for v, c in extra_runs(FAMILY, RELEASES)
]


@pytest.mark.parametrize(("version", "case"), RUNS)
def test_layers_equal_vllm(version: str, case: dict) -> None:
    check_layers(FAMILY, version, case, GAPS)


@pytest.mark.parametrize(("version", "case"), RUNS)
def test_groups_and_blocks_equal_vllm(version: str, case: dict) -> None:
    check_groups(FAMILY, version, case, GAPS)


def _case(cid: str) -> dict:
    return next(c for c in CASES if c["id"] == cid)


def test_gemma3n_shared_layers_read_first_shared_minus_two_or_one():
    # Gemma 3n E4B (transformers' defaults): 35 layers, every 5th full, the last 15 shared,
    # so first_shared = 20: sliding layers read layer 18, full ones layer 19 (gemma3n.py).
    plan = api.plan(config(_case("gemma-3n-e4b-defaults-tp1")), kv_cache_memory="20GiB")
    sharing = plan.layout.kv_sharing[0]
    root = "language_model.model.layers"
    assert len(sharing) == 15 and len(plan.layout.stage_specs[0]) == 20
    for i in range(20, 35):
        target = 19 if (i + 1) % 5 == 0 else 18
        assert sharing[f"{root}.{i}.self_attn.attn"] == f"{root}.{target}.self_attn.attn"


def test_gemma4_shared_layers_read_the_last_earlier_layer_of_their_type():
    # The 26B-A4B config with num_kv_shared_layers 10: layers 20..29 share; full layers are
    # 5, 11, 17, 23, 29 (every 6th), so full layers read 17 and sliding ones 19 (gemma4.py).
    plan = api.plan(config(_case("gemma-4-26b-a4b-kv-shared-tp1")), kv_cache_memory="20GiB")
    root = "language_model.model.layers"
    sharing = plan.layout.kv_sharing[0]
    assert sorted(sharing) == sorted(f"{root}.{i}.self_attn.attn" for i in range(20, 30))
    assert sharing[f"{root}.23.self_attn.attn"] == f"{root}.17.self_attn.attn"
    assert sharing[f"{root}.20.self_attn.attn"] == f"{root}.19.self_attn.attn"
    # The workers' view: each shared layer sits in its target's group and aliases its tensor.
    for group in plan.kv.groups:
        for name in group.shared_layers:
            assert sharing[name] in group.layer_names
    # vLLM's KVCacheTensor.shared_by lists only layers with a cache (the oracle's tensors, compared
    # in test_oracle.py); the shared layers read their target's tensor (aliased_by), each exactly once.
    aliased = []
    for tensor in plan.stages[0].tensors:
        assert not set(tensor.shared_by) & set(sharing)
        assert all(sharing[name] in tensor.shared_by for name in tensor.aliased_by)
        aliased += tensor.aliased_by
    assert sorted(aliased) == sorted(sharing)


def test_gemma4_full_layers_have_their_own_head_size_and_kv_heads():
    # 26B-A4B: sliding layers 8 KV heads x 256, full layers (attention_k_eq_v)
    # num_global_key_value_heads 2 x global_head_dim 512: pages 131072 vs 65536 B at TP 1.
    plan = api.plan(config(_case("gemma-4-26b-a4b-tp1")), kv_cache_memory="20GiB")
    specs = plan.layout.stage_specs[0]
    sliding = specs["language_model.model.layers.0.self_attn.attn"]
    full = specs["language_model.model.layers.5.self_attn.attn"]
    assert (sliding.num_kv_heads, sliding.head_size, sliding.page_size_bytes) == (8, 256, 131072)
    assert (full.num_kv_heads, full.head_size, full.page_size_bytes) == (2, 512, 65536)
