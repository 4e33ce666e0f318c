"""Mamba prefill checkpoint blocks (vLLM 0.29+'s ``num_prefill_checkpoint_blocks``).

Where each number comes from, read in the released wheels:

* ``MambaSpec.max_memory_usage_bytes`` (vllm/v1/kv_cache_interface.py, 0.29+): in
  ``align`` mode a request holds ``2 + num_speculative_blocks +
  num_prefill_checkpoint_blocks`` state pages; otherwise ``1 + num_speculative_blocks``.
* vllm/model_executor/layers/mamba/mamba_mixer2.py ``get_kv_cache_spec`` (0.32+): every
  Mamba2 mixer's spec keeps one checkpoint block with alignment 1, in any mode.
* vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py (0.33): a Qwen gated
  delta net exports checkpoints every 64 tokens in ``align`` mode when its prefill runs
  on FlashInfer (Hopper; Blackwell with 128-wide key heads); then the platform keeps the
  attention block a multiple of 64 (platforms/interface.py ``_align_hybrid_block_size``)
  and the spec keeps one checkpoint block aligned to the Mamba block size.

The same figures are checked against vLLM's own planner in tests/test_oracle.py
(nemotron-h-8b, qwen3-next-80b-a3b, qwen3.5-397b-a17b, mamba-codestral-7b on 0.28.0,
0.32.0 and 0.33.0; qwen3-next-80b-a3b-tp4 on an A100 and a B200 too).
"""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.vllm.specs import MambaSpec, Usage

MEM = {"kv_cache_memory": "20GiB"}


def _mamba(plan: api.Plan, name: str) -> MambaSpec:
    spec = plan.layout.stage_specs[0][name]
    assert isinstance(spec, MambaSpec)
    return spec


def _usage(plan: api.Plan) -> Usage:
    return Usage(
        max_model_len=plan.max_model_len,
        max_num_batched_tokens=plan.max_num_batched_tokens,
        mamba_cache_mode=plan.layout.mamba_cache_mode,
    )


@pytest.mark.parametrize(
    ("version", "checkpoint", "pages"),
    [("0.31.0", (0, None), 2), ("0.32.0", (1, 1), 3), ("0.33.0", (1, 1), 3)],
)
def test_mamba2_mixers_keep_a_checkpoint_block_from_032(version, checkpoint, pages):
    # Nemotron-H 8B at TP 1: conv (3, 8192 + 2 x 8 x 128 = 10240) bf16 = 61,440 B, SSM
    # (128, 64, 128) float32 = 4,194,304 B; attention 8 KV heads x 128 x 2 x 2 = 4096 B/token,
    # so block 16 x cdiv(4,255,744, 16 x 4096) = 1040 and the padded page 1040 x 4096 = 4,259,840 B.
    r = api.plan("nemotron-h-8b", **MEM, vllm_version=version)
    assert r.layout.mamba_cache_mode == "align"
    spec = _mamba(r, "model.layers.0.mixer")
    assert (spec.num_prefill_checkpoint_blocks, spec.prefill_checkpoint_alignment) == checkpoint
    assert spec.page_size_bytes == 1040 * 4096 == 4259840
    assert spec.max_memory_usage_bytes(_usage(r)) == pages * 4259840


def test_mamba2_checkpoint_block_costs_nothing_outside_align_mode():
    # Mamba-Codestral (attention-free, prefix caching off: mode "none") keeps the block in
    # its spec, as vLLM 0.32+ records it, but a request still holds one state page.
    r = api.plan("mamba-codestral-7b", **MEM, vllm_version="0.33.0")
    assert r.layout.mamba_cache_mode == "none"
    spec = _mamba(r, "backbone.layers.0.mixer")
    assert (spec.num_prefill_checkpoint_blocks, spec.prefill_checkpoint_alignment) == (1, 1)
    assert spec.max_memory_usage_bytes(_usage(r)) == spec.page_size_bytes


# Qwen3-Next-80B at TP 4: attention 2 KV heads -> 1 per rank x head 256 x 2 x 2 = 1024 B/token;
# delta-net state conv (3, (2 x 16 x 128 + 32 x 128) / 4 = 2048) + temporal (32 / 4, 128, 128),
# bf16 = 12,288 + 262,144 = 274,432 B.  Blocks: 16 x cdiv(274,432, 16 x 1024) = 272 without
# checkpoints, 64 x cdiv(274,432, 64 x 1024) = 320 with FlashInfer's 64-token checkpoints.
@pytest.mark.parametrize(
    ("version", "gpu", "block", "checkpoint"),
    [
        ("0.32.0", "H100-80GB", 272, (0, None)),  # no delta net exports checkpoints before 0.33
        ("0.33.0", "H100-80GB", 320, (1, 320)),
        ("0.33.0", "B200", 320, (1, 320)),  # FlashInfer on Blackwell: linear_key_head_dim is 128
        ("0.33.0", "A100-80GB", 272, (0, None)),  # Triton/FLA prefill: no checkpoints
    ],
)
def test_qwen_delta_nets_export_checkpoints_on_flashinfer_in_033(version, gpu, block, checkpoint):
    r = api.plan("qwen3-next-80b-a3b", **MEM, tp=4, gpu=gpu, vllm_version=version)
    spec = _mamba(r, "model.layers.0.linear_attn")
    assert spec.real_page_size_bytes == 274432
    assert spec.block_size == block
    assert (spec.num_prefill_checkpoint_blocks, spec.prefill_checkpoint_alignment) == checkpoint
    assert spec.max_memory_usage_bytes(_usage(r)) == (2 + checkpoint[0]) * block * 1024


def test_qwen_delta_nets_export_nothing_without_prefix_caching():
    # Prefix caching off: mode "none", so the delta nets declare no alignment (vLLM 0.33 sets it
    # only in align mode): the attention block stays 272 and the state spec has no checkpoint.
    r = api.plan("qwen3-next-80b-a3b", **MEM, tp=4, enable_prefix_caching=False, vllm_version="0.33.0")
    assert r.layout.mamba_cache_mode == "none"
    assert r.layout.stage_specs[0]["model.layers.3.self_attn.attn"].block_size == 272
    spec = _mamba(r, "model.layers.0.linear_attn")
    assert (spec.num_prefill_checkpoint_blocks, spec.prefill_checkpoint_alignment) == (0, None)


def test_checkpoint_fields_decide_equality_and_type():
    # vLLM's MambaSpec is a frozen dataclass (equality over every field), and
    # is_uniform_with_collection compares both checkpoint fields (0.29+ / 0.30+).
    base = MambaSpec(block_size=16, shapes=((3, 8),), dtypes=("bfloat16",))
    with_block = MambaSpec(
        block_size=16,
        shapes=((3, 8),),
        dtypes=("bfloat16",),
        num_prefill_checkpoint_blocks=1,
        prefill_checkpoint_alignment=1,
    )
    other_alignment = MambaSpec(
        block_size=16,
        shapes=((3, 8),),
        dtypes=("bfloat16",),
        num_prefill_checkpoint_blocks=1,
        prefill_checkpoint_alignment=16,
    )
    assert base != with_block != other_alignment
    assert not base.same_type_as(with_block)
    assert not with_block.same_type_as(other_alignment)


def test_json_shows_the_checkpoint_block(kvplan):
    doc = kvplan("plan", "nemotron-h-8b", "--kv-cache-memory", "20GiB", "--format", "json").json()
    (mamba,) = {
        (g["spec"]["num_prefill_checkpoint_blocks"], g["spec"]["prefill_checkpoint_alignment"])
        for g in doc["kv_cache_groups"]
        if g["spec"]["type"] == "mamba"
    }
    assert mamba == (1, 1)
    old = kvplan(
        "plan", "nemotron-h-8b", "--kv-cache-memory", "20GiB", "--vllm-version", "0.31", "--format", "json"
    ).json()
    assert all("num_prefill_checkpoint_blocks" not in g["spec"] for g in old["kv_cache_groups"])


@pytest.mark.parametrize(("version", "extra"), [("0.21.0", 0), ("0.22.0", 2), ("0.28.0", 2)])
def test_mode_all_counts_the_speculative_blocks_from_022(version, extra):
    # MambaSpec.max_memory_usage_bytes in mode "all": cdiv(max_model_len, block) pages, plus
    # num_speculative_blocks from 0.22 (vllm/v1/kv_cache_interface.py; 0.21.0 has only the first term).
    r = api.plan(
        "nemotron-h-8b",
        **MEM,
        vllm_version=version,
        enable_prefix_caching=True,
        mamba_cache_mode="all",
        speculative_config={"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_max": 3},
    )
    assert r.layout.mamba_cache_mode == "all"
    spec = _mamba(r, "model.layers.0.mixer")
    assert spec.num_speculative_blocks == 2
    usage = Usage(
        max_model_len=r.max_model_len,
        max_num_batched_tokens=r.max_num_batched_tokens,
        mamba_cache_mode="all",
        mamba_all_spec_blocks=r.release.behaviour.mamba_all_spec_blocks,
    )
    pages = -(-r.max_model_len // spec.block_size) + extra
    assert spec.max_memory_usage_bytes(usage) == pages * spec.page_size_bytes
    # Six Mamba groups and one attention group of 1152-token blocks: cdiv(8192, 1152) = 8 blocks
    # each, and 2 more in each Mamba group from 0.22 (56 or 68 a request, as the capacity log divides).
    assert spec.block_size == 1152 and r.max_model_len == 8192
    blocks = 7 * 8 + 6 * extra
    assert r.kv.capacity is not None and r.kv.capacity.blocks_per_request == blocks
    assert r.max_concurrency == r.num_blocks / blocks
