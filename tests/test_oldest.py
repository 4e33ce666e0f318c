"""Every architecture kvplan derives, checked against vLLM's own model code on the
oldest release that serves it (and on the newest).

``tools/oracle_oldest.py`` works out, from ``tests/coverage/registered.json`` (the
names each release's ``vllm/model_executor/models/registry.py`` registers) and
kvplan's ``since``/``until``, the first release serving each derived name; the
family tests compare kvplan with vLLM's fixture of that release for every case of
the name.  Here: kvplan's ranges are the registries' ranges, every such fixture
is there, and the names not checked yet are the ones listed, with why.
"""

from __future__ import annotations

import json
from pathlib import Path

from tools import oracle_oldest as oldest

COVERAGE = Path(__file__).parent / "coverage"

# vLLM registered these over more than one range of releases; kvplan derives one range.
SPLIT_RANGES = {
    "ExaoneMoEForCausalLM": (
        "registered 0.14.0 - 0.26.x (exaone_moe.py) and again from 0.32.0; kvplan derives it "
        "from 0.32.0 (ExaoneMoeForCausalLM is the 0.27+ spelling)"
    ),
}


def test_since_and_until_are_the_registries() -> None:
    """Each derived name's since/until (or ``registered``) equals the releases whose registry lists it."""
    found = oldest.registry_mismatches()
    assert sorted(line.split(":")[0] for line in found) == sorted(SPLIT_RANGES), found


def test_registry_snapshot_agrees_with_the_033_coverage_snapshot() -> None:
    snapshot = json.loads((COVERAGE / "vllm-0.33.0.json").read_text())["architectures"]
    newest = {n for group in snapshot.values() for n in group}
    registered = oldest.registered()
    assert {n for n in registered if oldest.served_by_vllm(n, "0.33.0")} == newest


def test_every_oldest_release_case_has_its_fixture() -> None:
    """The fixtures of the releases first serving each case's architecture hold that case."""
    assert oldest.missing_fixtures() == []


def test_unchecked_architectures_are_known() -> None:
    """The names not checked on both releases are the ones ``UNCHECKED`` lists, with why."""
    assert oldest.unchecked().keys() == oldest.UNCHECKED.keys(), oldest.unchecked()


def test_moved_names_are_checked_where_they_moved() -> None:
    """A name checked on a later release than its first is checked on that one."""
    for name, (release, _) in oldest.MOVED.items():
        assert oldest.served_by_vllm(name, release), name
        assert name in oldest.UNCHECKED or oldest.checked(name, release)[0], name
