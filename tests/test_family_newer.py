"""Architectures vLLM registered from 0.12 on (several caches a layer, per-layer
windows and head sizes, ...) against vLLM's own model code.

Every case of tests/oracle/cases/newer.json was built by vLLM itself on the meta
device (tests/oracle/fixtures/newer/vllm-<version>.json: each layer's
``get_kv_cache_spec`` on TP rank 0 of every PP stage, and the planner's groups
and block count for 20 GiB per worker), on 0.33.0 and on the oldest release
that serves the architecture (a case's ``releases``).  kvplan must give the
same layer names and, per layer, the same spec kind, block size, page size, KV
heads, head sizes, dtype, window and state shapes, the same KV cache groups and
the same number of blocks; where vLLM refused the case, kvplan must refuse it
too.  Configs: tests/oracle/configs/<name>/ (source.txt says where each comes
from).
"""

from __future__ import annotations

from typing import Any

import pytest
from oracle_match import cases, check_groups, check_layers, fixture, kvplan_plan

from kvplan.errors import KvplanError
from kvplan.model.registry import _NEWER, _NEWER_WRAPPERS, ARCHITECTURES, REFUSED, WRAPPERS

FAMILY = "newer"
CASES = cases(FAMILY)
RUNS = [
    pytest.param(version, case, id=f"{case['id']}-{version}")
    for case in CASES
    for version in case["releases"]
]


def _refused_by_vllm(version: str, case: dict[str, Any]) -> bool:
    result = fixture(FAMILY, version)["results"].get(case["id"])
    if result is None:
        pytest.fail(f"case {case['id']} is not in the vLLM {version} fixture")
    return result["status"] in ("config_error", "build_error")


@pytest.mark.parametrize(("version", "case"), RUNS)
def test_layers_equal_vllm(version: str, case: dict[str, Any]) -> None:
    if _refused_by_vllm(version, case):
        # vLLM refused to build the model (e.g. Dory beyond one TP rank): kvplan refuses too
        result = fixture(FAMILY, version)["results"][case["id"]]
        with pytest.raises(KvplanError):
            kvplan_plan(case, result, version)
        return
    check_layers(FAMILY, version, case)


@pytest.mark.parametrize(("version", "case"), RUNS)
def test_groups_and_blocks_equal_vllm(version: str, case: dict[str, Any]) -> None:
    if _refused_by_vllm(version, case):
        return
    check_groups(FAMILY, version, case)


NEWER = sorted({**_NEWER, **_NEWER_WRAPPERS})


def test_cases_cover_only_these_architectures() -> None:
    assert {_arch(case) for case in CASES} == set(NEWER)


@pytest.mark.parametrize("name", NEWER)
def test_every_architecture_has_oracle_cases(name: str) -> None:
    # each architecture of these families is checked at TP 1 and a TP > 1, on 0.33.0
    # and on the first release that registers it (its registry entry's ``since``)
    mine = [case for case in CASES if _arch(case) == name]
    assert {case["tp"] for case in mine} >= {1, 2}
    entry = ARCHITECTURES.get(name) or WRAPPERS[name]
    since = entry.since or "0.10.0"
    releases = {version for case in mine for version in case["releases"]}
    assert "0.33.0" in releases
    assert min(releases, key=_key) == since, releases


def _arch(case: dict[str, Any]) -> str:
    from oracle_match import config

    return str(config(case)["architectures"][0])


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_architectures_name_what_is_missing(name: str) -> None:
    from kvplan.api import plan

    cfg = {"architectures": [name], "num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 64}
    with pytest.raises(KvplanError, match="KV cache kind kvplan does not derive") as err:
        plan(cfg, kv_cache_memory="20GiB")
    assert REFUSED[name] in err.value.message


def test_bailing_v2_5_refuses_tp_beyond_group_norm_size() -> None:
    # bailing_linear_attn.py asserts tp_size <= group_norm_size (8 in this config)
    from oracle_match import config

    from kvplan.api import plan

    cfg = config({"config": "bailing-v2.5-constructed"})
    with pytest.raises(KvplanError, match="tp_size must be <= group_norm_size"):
        plan(cfg, kv_cache_memory="20GiB", tensor_parallel_size=16)


def test_bailing_v2_5_needs_the_mla_model_type() -> None:
    # vLLM takes the model for MLA by model_type (model_arch_config_convertor.is_deepseek_mla)
    from oracle_match import config

    from kvplan.api import plan

    cfg = {**config({"config": "bailing-v2.5-constructed"}), "model_type": "bailing_moe_linear"}
    with pytest.raises(KvplanError, match="bailing_hybrid"):
        plan(cfg, kv_cache_memory="20GiB")
