"""Dense models end to end: the figures of the first issue, checked by hand.

A Llama-3.1-8B layer on one rank holds 8 KV heads x 128 x 2 (K and V) x 2 bytes
= 4096 bytes per token, so one 16-token block of all 32 layers is
32 x 16 x 4096 = 2 MiB, and 20 GiB holds 20 GiB / 2 MiB = 10240 blocks.
"""

from __future__ import annotations

import json

from kvplan import api
from kvplan.vllm.layout import pp_partition

GiB = 1 << 30


def test_llama_8b_20gib_gives_10240_blocks(kvplan):
    doc = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--format", "json").json()
    assert doc["num_blocks"] == 20 * GiB // (32 * 2 * 16 * 8 * 128 * 2) == 10240
    assert doc["block_size"] == 16
    layer = doc["layers"][0]
    assert layer["num_kv_heads"] == 8 and layer["head_size"] == 128
    assert layer["bytes_per_token"] == 2 * 8 * 128 * 2
    assert layer["page_size_bytes"] == 16 * 4096


def test_llama_8b_tp2_halves_heads_and_doubles_blocks(kvplan):
    doc = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--tp", "2", "--format", "json").json()
    assert doc["layers"][0]["num_kv_heads"] == 4
    assert doc["num_blocks"] == 20 * GiB // (32 * 2 * 16 * 4 * 128 * 2) == 20480


def test_capacity_as_the_newest_release_logs_it(kvplan):
    # 131072 tokens need 131072 / 16 = 8192 blocks: 10240 / 8192 = 1.25x,
    # and tokens = int(1.25 x 131072) = 163840.
    doc = kvplan("plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--format", "json").json()
    assert doc["max_concurrency"]["x"] == 1.25
    assert doc["kv_cache_tokens"] == 163840
    assert doc["max_model_len"] == {
        **doc["max_model_len"],
        "value": 131072,
        "fits": True,
    }


def test_pp_split_of_30_layers_over_4_stages_is_7_8_8_7():
    # get_pp_indices: 30 // 4 = 7 each, the remainder 2 goes to the two stages before the last.
    assert pp_partition(30, 4) == [7, 8, 8, 7]
    assert pp_partition(32, 4) == [8, 8, 8, 8]
    # 31 = 4 x 7 + 3: the three stages before the last get one more.
    assert pp_partition(31, 4) == [8, 8, 8, 7]
    assert pp_partition(30, 4, [6, 8, 8, 8]) == [6, 8, 8, 8]


def test_pp_uneven_end_to_end(tmp_path, kvplan):
    # A 30-layer Llama-style model: stages hold 7, 8, 8 and 7 layers; with 10 GiB each
    # the stage of 8 layers gets 10 GiB // (8 x 64 KiB) = 20480 blocks, the 7-layer
    # stages 10 GiB // (7 x 64 KiB) = 23405; every worker uses the minimum, 20480.
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_hidden_layers": 30,
        "max_position_embeddings": 8192,
        "torch_dtype": "bfloat16",
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    doc = kvplan("plan", path, "--pp", "4", "--kv-cache-memory", "10GiB", "--format", "json").json()
    assert [len(s["layers"]) for s in doc["stages"]] == [7, 8, 8, 7]
    assert [s["num_blocks_before_unify"] for s in doc["stages"]] == [23405, 20480, 20480, 23405]
    assert doc["num_blocks"] == 20480
    # The 7-layer stages leave 10 GiB - 20480 x 7 x 64 KiB = 1.25 GiB unused.
    assert doc["stages"][0]["unused_bytes"] == 10 * GiB - 20480 * 7 * 65536


def test_per_stage_memory_list(kvplan):
    doc = kvplan(
        "plan", "llama-3.1-8b", "--pp", "2", "--kv-cache-memory", "20GiB,10GiB", "--format", "json"
    ).json()
    # 16 layers per stage: 20 GiB // (16 x 64 KiB) = 20480 and 10 GiB // 1 MiB = 10240.
    assert [s["num_blocks_before_unify"] for s in doc["stages"]] == [20480, 10240]
    assert doc["num_blocks"] == 10240


def test_mqa_replication_when_tp_exceeds_kv_heads():
    # Llama-3.1-70B has 8 KV heads; at TP=16 each head is replicated on 2 ranks: 1 per rank.
    result = api.plan("llama-3.1-70b", **{"tp": 16, "kv_cache_memory": "10GiB"})
    assert result.layout.stage_specs[0]["model.layers.0.self_attn.attn"].num_kv_heads == 1


def test_fp8_kv_cache_is_one_byte(kvplan):
    doc = kvplan(
        "plan", "llama-3.1-8b", "--kv-cache-memory", "20GiB", "--kv-cache-dtype", "fp8", "--format", "json"
    ).json()
    assert doc["layers"][0]["bytes_per_token"] == 2 * 8 * 128 * 1
    assert doc["num_blocks"] == 20480
