"""All five forms of MODEL give the same plan for the same config."""

from __future__ import annotations

import json

import yaml

from kvplan.inputs import presets

MEM = ("--kv-cache-memory", "20GiB", "--format", "json")


def _blocks(outcome):
    assert outcome.code == 0, outcome.stderr
    return outcome.json()["num_blocks"]


def test_five_forms(kvplan, tmp_path, monkeypatch):
    cfg = presets.model_info("llama-3.1-8b")["config"]
    expected = _blocks(kvplan("plan", "llama-3.1-8b", *MEM))
    # config.json and a directory holding it
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps(cfg))
    assert _blocks(kvplan("plan", tmp_path / "model" / "config.json", *MEM)) == expected
    assert _blocks(kvplan("plan", tmp_path / "model", *MEM)) == expected
    # kvplan YAML: HF keys plus serving:
    doc = {**cfg, "serving": {"tp": 2, "kv_cache_memory": "20GiB"}}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(doc))
    assert kvplan("plan", tmp_path / "m.yaml", "--format", "json").json()["num_blocks"] == 2 * expected
    # a flag beats the YAML
    assert (
        kvplan("plan", tmp_path / "m.yaml", "--tp", "1", "--format", "json").json()["num_blocks"] == expected
    )
    # hub id from the local cache only
    snap = tmp_path / "hub" / "models--meta-llama--Llama-3.1-8B-Instruct" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert _blocks(kvplan("plan", "meta-llama/Llama-3.1-8B-Instruct", *MEM)) == expected


def test_uncached_hub_id_is_refused_without_network(kvplan, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    out = kvplan("plan", "someorg/somemodel", *MEM)
    assert out.code == 2 and "local Hugging Face cache" in out.stderr
