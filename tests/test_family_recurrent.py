"""Recurrent-state models (Mamba, Mamba2, gated delta net, KDA, short conv) against
vLLM's own model code.

Every case of tests/oracle/cases/recurrent.json was built by vLLM itself on the
meta device (tests/oracle/fixtures/recurrent/vllm-<version>.json: each layer's
``get_kv_cache_spec`` on TP rank 0 of every PP stage, and the planner's groups
and block count); kvplan must give the same layer names and, per layer, the
same spec kind, block size, page size, KV heads, head sizes, dtype and state
shapes / dtypes.  Configs: tests/oracle/configs/<name>/ (source.txt says where
each comes from).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from oracle_match import cases, check_groups, check_layers, kvplan_plan, served_result, vllm_stages

from kvplan.model.layers import MambaLayer
from kvplan.vllm.sharding import spec_for
from kvplan.vllm.specs import MambaSpec
from tools.oracle_oldest import extra_runs

FAMILY = "recurrent"
RELEASES = ("0.33.0", "0.19.1")
ALL = cases(FAMILY)
# Cases with speculative decoding are checked for their state shapes only (below): kvplan
# takes the number of speculative tokens from the shard context, not yet from a flag.
CASES = [c for c in ALL if "speculative_config" not in c["args"]]
SPEC_CASES = [c for c in ALL if "speculative_config" in c["args"]]


def _runs(cases_: list[dict]) -> list:
    """Every case on both releases, and on the oldest release serving its architecture."""
    extra = [(v, c) for v, c in extra_runs(FAMILY, RELEASES) if c in cases_]
    pairs = [(v, c) for v in RELEASES for c in cases_] + extra
    return [pytest.param(v, c, id=f"{c['id']}-{v}") for v, c in pairs]


@pytest.mark.parametrize(("version", "case"), _runs(CASES))
def test_layers_equal_vllm(version: str, case: dict) -> None:
    check_layers(FAMILY, version, case)


@pytest.mark.parametrize(("version", "case"), _runs(CASES))
def test_groups_and_blocks_equal_vllm(version: str, case: dict) -> None:
    check_groups(FAMILY, version, case)


@pytest.mark.parametrize(("version", "case"), _runs(SPEC_CASES))
def test_speculative_tokens_add_conv_rows_as_vllm_does(version: str, case: dict) -> None:
    # With n speculative tokens vLLM gives each recurrent layer n speculative blocks and,
    # where the release says so, n more conv-state rows (gated delta nets always; Mamba2
    # from 0.17; KDA from 0.27; short conv from 0.29; Mamba (v1) never).
    got = served_result(FAMILY, version, case)
    if got is None:
        return
    fx, result = got
    n = case["args"]["speculative_config"]["num_speculative_tokens"]
    plan = kvplan_plan(case, result, version)
    ctx = replace(plan.layout.context, num_speculative_tokens=n)
    keys = ("shapes", "dtypes", "mamba_type", "num_speculative_blocks")
    theirs = {
        name: {k: spec[k] for k in keys}
        for stage in vllm_stages(fx, result)
        for name, spec in stage.items()
        if spec["kind"] == "mamba"
    }
    ours = {}
    for layer in plan.description.layers:
        if isinstance(layer, MambaLayer):
            spec = spec_for(layer, ctx)
            assert isinstance(spec, MambaSpec)
            ours[layer.name] = {
                "shapes": [list(x) for x in spec.shapes],
                "dtypes": list(spec.dtypes),
                "mamba_type": spec.mamba_type,
                "num_speculative_blocks": spec.num_speculative_blocks,
            }
    assert ours == theirs
