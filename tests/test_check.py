"""``kvplan check``: budgets that hold and fail, exit codes, verdict text, JUnit XML.

Figures by hand (same arithmetic as test_dense.py):
- llama-3.1-8b, 20 GiB: 32 layers x 16 tokens x 4096 B = 2 MiB per block ->
  10240 blocks; 131072 tokens need 8192 blocks -> 1.25x; tokens
  int(1.25 x 131072) = 163840; the KV cache takes 10240 x 2 MiB = 20 GiB.
- qwen3-8b, 20 GiB: 36 layers x 16 x (2 x 8 x 128 x 2 B) = 2,359,296 B per
  block -> 20 GiB // that = 9102 blocks; its 40960-token requests need 2560
  blocks -> 9102 / 2560 = 3.555x; tokens int(3.5554688 x 40960) = 145632.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from kvplan.errors import InputError
from kvplan.workflows import check as check_mod

GiB = 1 << 30
LLAMA = ("llama-3.1-8b", "--kv-cache-memory", "20GiB")


def test_all_budgets_hold_exits_0(kvplan):
    out = kvplan(
        "check",
        *LLAMA,
        "--min-kv-tokens",
        "163840",
        "--min-concurrency",
        "1.25",
        "--max-model-len-must-fit",
        "--min-num-blocks",
        "10240",
        "--max-kv-cache-memory",
        "20GiB",
    )
    assert out.code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == [
        "PASS  llama-3.1-8b  min_kv_tokens: 163,840 KV cache tokens >= 163,840",
        "PASS  llama-3.1-8b  min_concurrency: 1.25x concurrency at 131,072 tokens per request >= 1.25x",
        "PASS  llama-3.1-8b  max_model_len_must_fit: max_model_len 131,072 fits",
        "PASS  llama-3.1-8b  min_num_blocks: 10,240 blocks >= 10,240",
        "PASS  llama-3.1-8b  max_kv_cache_memory: KV cache 20.00 GiB per worker <= 20.00 GiB",
    ]


def test_failing_budgets_exit_1_with_measured_and_limit(kvplan):
    out = kvplan(
        "check",
        *LLAMA,
        "--min-kv-tokens",
        "163841",
        "--min-concurrency",
        "2",
        "--min-num-blocks",
        "10000",
        "--max-kv-cache-memory",
        "19GiB",
    )
    assert out.code == 1
    assert out.stdout.splitlines() == [
        "FAIL  llama-3.1-8b  min_kv_tokens: 163,840 KV cache tokens < 163,841",
        "FAIL  llama-3.1-8b  min_concurrency: 1.25x concurrency at 131,072 tokens per request < 2x",
        "PASS  llama-3.1-8b  min_num_blocks: 10,240 blocks >= 10,000",
        "FAIL  llama-3.1-8b  max_kv_cache_memory: KV cache 20.00 GiB per worker > 19.00 GiB",
    ]


def test_max_model_len_that_does_not_fit_fails(kvplan):
    # 1 GiB holds 1 GiB / 2 MiB = 512 blocks = 8192 tokens, far below 131072.
    out = kvplan("check", "llama-3.1-8b", "--kv-cache-memory", "1GiB", "--max-model-len-must-fit")
    assert out.code == 1
    assert out.stdout.startswith(
        "FAIL  llama-3.1-8b  max_model_len_must_fit: max_model_len 131,072 does not fit"
    )


def test_junit_xml_structure(kvplan, tmp_path):
    junit = tmp_path / "kvplan.xml"
    out = kvplan(
        "check",
        "llama-3.1-8b",
        "qwen3-8b",
        "--kv-cache-memory",
        "20GiB",
        "--min-kv-tokens",
        "150000",
        "--min-concurrency",
        "1.25",
        "--junit",
        junit,
    )
    # llama: 163,840 tokens and 1.25x pass; qwen3-8b: 145,632 < 150,000 fails, 3.56x passes.
    assert out.code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("4", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["llama-3.1-8b", "qwen3-8b"]
    assert [(s.get("tests"), s.get("failures")) for s in suites] == [("2", "0"), ("2", "1")]
    cases = suites[1].findall("testcase")
    assert [c.get("name") for c in cases] == ["min_kv_tokens", "min_concurrency"]
    failure = cases[0].find("failure")
    assert failure is not None
    assert failure.get("message") == "145,632 KV cache tokens < 150,000"
    assert cases[1].find("failure") is None
    assert all(c.find("failure") is None for c in suites[0].findall("testcase"))


def test_budget_section_of_the_yaml_and_flags_beat_it(kvplan, tmp_path):
    model = tmp_path / "tiny.yaml"
    # A Llama-shaped model: 4 layers x 2 KV heads x 64 x 2 x 2 B = 2048 B per token,
    # 32 KiB per block of all layers; 64 MiB / 32 KiB = 2048 blocks = 32768 tokens.
    model.write_text(
        "architectures: [LlamaForCausalLM]\n"
        "hidden_size: 512\nnum_attention_heads: 8\nnum_key_value_heads: 2\nnum_hidden_layers: 4\n"
        "intermediate_size: 1024\nvocab_size: 1000\nmax_position_embeddings: 4096\ntorch_dtype: bfloat16\n"
        "serving:\n  kv_cache_memory: 64MiB\n"
        "budget:\n  min_kv_tokens: 40000\n  min_num_blocks: 2048\n"
    )
    out = kvplan("check", model)
    assert out.code == 1
    assert "FAIL" in out.stdout and "32,768 KV cache tokens < 40,000" in out.stdout
    assert "PASS" in out.stdout and "2,048 blocks >= 2,048" in out.stdout
    out = kvplan("check", model, "--min-kv-tokens", "32768")
    assert out.code == 0, out.stdout
    assert "32,768 KV cache tokens >= 32,768" in out.stdout


def test_unknown_budget_key_is_bad_input(kvplan, tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text("architectures: [LlamaForCausalLM]\nbudget:\n  min_tokens: 5\n")
    out = kvplan("check", model)
    assert out.code == 2
    assert "budget.min_tokens" in out.stderr and "unknown budget key" in out.stderr


def test_no_budget_and_bad_flags_exit_2(kvplan):
    out = kvplan("check", *LLAMA)
    assert out.code == 2 and "no budget" in out.stderr
    out = kvplan("check", *LLAMA, "--max-kv-cache-memory", "lots")
    assert out.code == 2 and "--max_kv_cache_memory" in out.stderr
    out = kvplan("check", "no-such-model", "--min-kv-tokens", "1")
    assert out.code == 2 and "unknown model" in out.stderr


def test_markdown_and_github_step_summary(kvplan, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = kvplan("check", *LLAMA, "--min-kv-tokens", "100000", "--format", "markdown")
    assert out.code == 0
    assert "| ✅ | `llama-3.1-8b` | `min_kv_tokens` | 163,840 KV cache tokens >= 100,000 |" in out.stdout
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, not replaced
    assert "### kvplan check: 1 of 1 budgets hold" in text


def test_json_verdicts(kvplan):
    doc = kvplan("check", *LLAMA, "--min-num-blocks", "10241", "--format", "json").json()
    assert doc["passed"] is False and doc["failures"] == 1
    assert doc["verdicts"][0] == {
        "model": "llama-3.1-8b",
        "budget": "min_num_blocks",
        "passed": False,
        "measured": 10240,
        "limit": 10241,
        "text": "10,240 blocks < 10,241",
    }


def test_parse_budget_types():
    b = check_mod.parse_budget({"max_kv_cache_memory": "20GiB", "min_concurrency": 2}, "m.yaml")
    assert b.max_kv_cache_memory == 20 * GiB and b.min_concurrency == 2.0
    with pytest.raises(InputError, match="budget.max_model_len_must_fit"):
        check_mod.parse_budget({"max_model_len_must_fit": "yes"}, "m.yaml")
    with pytest.raises(InputError, match="budget.min_kv_tokens"):
        check_mod.parse_budget({"min_kv_tokens": -1}, "m.yaml")
