"""Bad input: one clear message on stderr naming the file/field/value, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16",
}


def _expect_2(outcome, *needles):
    assert outcome.code == 2, (outcome.stdout, outcome.stderr)
    assert "Traceback" not in outcome.stderr
    assert outcome.stderr.startswith("kvplan: error:")
    for needle in needles:
        assert needle in outcome.stderr, outcome.stderr


def _cfg(tmp_path, data, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else data)
    return path


MEM = ("--kv-cache-memory", "20GiB")


def test_missing_file(kvplan, tmp_path):
    _expect_2(kvplan("plan", tmp_path / "nope.yaml", *MEM), "no such file")


def test_unknown_preset(kvplan):
    _expect_2(kvplan("plan", "llama-9.9-999b", *MEM), "unknown model", "kvplan presets")


def test_malformed_yaml(kvplan, tmp_path):
    _expect_2(
        kvplan("plan", _cfg(tmp_path, "a: [1, 2\nb: 3\n", "m.yaml"), *MEM), "m.yaml", "malformed YAML", "line"
    )


def test_malformed_json(kvplan, tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 4096,,}')
    _expect_2(kvplan("plan", path, *MEM), "malformed JSON", "line 1")


def test_wrong_type(kvplan, tmp_path):
    _expect_2(
        kvplan("plan", _cfg(tmp_path, {**LLAMA, "num_hidden_layers": "many"}), *MEM),
        "num_hidden_layers",
        "'many'",
    )


def test_negative_number(kvplan, tmp_path):
    _expect_2(
        kvplan("plan", _cfg(tmp_path, {**LLAMA, "num_key_value_heads": -8}), *MEM), "num_key_value_heads"
    )


def test_heads_not_divisible_by_tp(kvplan):
    # Llama-3.1-8B: 8 KV heads over TP=3 cannot be split or replicated.
    _expect_2(kvplan("plan", "llama-3.1-8b", "--tp", "3", *MEM), "tp", "3")


def test_pp_larger_than_layers(kvplan):
    _expect_2(kvplan("plan", "llama-3.1-8b", "--pp", "64", *MEM), "pipeline parallel size 64", "32 layers")


def test_bad_partition(kvplan):
    _expect_2(
        kvplan("plan", "llama-3.1-8b", "--pp", "2", "--pp-layer-partition", "10,10", *MEM),
        "pp_layer_partition",
        "sums to 20",
    )


def test_unknown_gpu(kvplan):
    _expect_2(kvplan("plan", "llama-3.1-8b", "--gpu", "Z9000"), "unknown GPU", "Z9000")


def test_unknown_dtype(kvplan):
    _expect_2(kvplan("plan", "llama-3.1-8b", "--kv-cache-dtype", "int3", *MEM), "kv_cache_dtype", "int3")


def test_unknown_architecture(kvplan, tmp_path):
    _expect_2(
        kvplan("plan", _cfg(tmp_path, {**LLAMA, "architectures": ["FancyNewForCausalLM"]}), *MEM),
        "FancyNewForCausalLM",
        "layers:",
    )


def test_bad_size(kvplan):
    _expect_2(kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "lots"), "kv_cache_memory", "lots")


def test_absurd_size(kvplan):
    _expect_2(kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "99999TiB"), "absurdly large")


def test_unknown_serving_key(kvplan, tmp_path):
    path = _cfg(tmp_path, "architectures: [LlamaForCausalLM]\nserving:\n  tensor_parallel: 2\n", "m.yaml")
    _expect_2(kvplan("plan", path, *MEM), "serving.tensor_parallel", "unknown serving option")


def test_serving_wrong_type(kvplan, tmp_path):
    path = _cfg(tmp_path, "architectures: [LlamaForCausalLM]\nserving:\n  tp: two\n", "m.yaml")
    _expect_2(kvplan("plan", path, *MEM), "tp", "two")


def test_no_memory_figure(kvplan):
    _expect_2(kvplan("plan", "llama-3.1-8b"), "--kv-cache-memory", "--gpu")


def test_unknown_release(kvplan):
    _expect_2(kvplan("plan", "llama-3.1-8b", "--vllm-version", "0.4", *MEM), "0.4", "0.10.0")


def test_empty_file(kvplan, tmp_path):
    _expect_2(kvplan("plan", _cfg(tmp_path, "", "m.yaml"), *MEM), "empty")


def test_directory_without_config(kvplan, tmp_path):
    _expect_2(kvplan("plan", tmp_path, *MEM), "no config.json")


def test_non_utf8(kvplan, tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"a": "\xff\xfe"}')
    _expect_2(kvplan("plan", path, *MEM), "not UTF-8")


def test_real_process_has_no_traceback(tmp_path):
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.run(
        [sys.executable, "-m", "kvplan", "plan", "llama-3.1-8b", "--tp", "3", *MEM],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") <= 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("flag", ["--tp", "--pp", "--block-size", "--max-num-seqs"])
def test_zero_or_negative_flags(kvplan, flag):
    _expect_2(kvplan("plan", "llama-3.1-8b", flag, "0", *MEM), flag.lstrip("-").replace("-", "_"))


def test_debug_shows_the_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "kvplan", "plan", "llama-3.1-8b", "--tp", "3", *MEM, "--debug"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "Traceback" in proc.stderr
