"""Weight counts against published parameter counts, and the safetensors-header path."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from kvplan.inputs.models import resolve_model
from kvplan.inputs.serving import Serving
from kvplan.memory import checkpoint as safetensors_header
from kvplan.memory import weights
from kvplan.model import describe as families
from kvplan.releases import resolve_release

# Published total parameter counts (model cards on huggingface.co unless noted).
PUBLISHED = {
    "llama-3.1-8b": 8.03e9,  # meta-llama/Llama-3.1-8B: "8.03B params"
    "llama-3.1-70b": 70.6e9,  # meta-llama/Llama-3.1-70B: "70.6B params"
    "llama-3.3-70b": 70.6e9,  # meta-llama/Llama-3.3-70B-Instruct: "70.6B params"
    "qwen3-8b": 8.2e9,  # Qwen/Qwen3-8B card: "Number of Parameters: 8.2B"
    "qwen3-32b": 32.8e9,  # Qwen/Qwen3-32B card: "Number of Parameters: 32.8B"
    "qwen3-30b-a3b": 30.5e9,  # Qwen/Qwen3-30B-A3B card: "30.5B in total"
    "qwen3-235b-a22b": 235e9,  # Qwen/Qwen3-235B-A22B card: "235B in total"
    "gpt-oss-20b": 20.9e9,  # gpt-oss model card (arXiv 2508.10925), table 1: 20.91B total
    "gpt-oss-120b": 116.8e9,  # same table: 116.83B total
    "deepseek-v3": 671e9,  # deepseek-ai/DeepSeek-V3 card: 671B main model (+14B MTP, not loaded)
    "mistral-7b-v0.1": 7.24e9,  # mistralai/Mistral-7B-v0.1: "7.24B params"
    "phi-3-mini": 3.8e9,  # microsoft/Phi-3-mini-4k-instruct card: "3.8B parameters"
    "gemma-2-9b": 9.24e9,  # google/gemma-2-9b-it: "9.24B params"
    "qwen2.5-7b": 7.61e9,  # Qwen/Qwen2.5-7B-Instruct card: "Number of Parameters: 7.61B"
    "deepseek-v2-lite": 15.7e9,  # deepseek-ai/DeepSeek-V2-Lite card: "15.7B total"
}


def _describe(name: str):
    return families.describe(resolve_model(name), resolve_release(None))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_published(name: str) -> None:
    count = weights.parameter_count(_describe(name))
    assert abs(count / PUBLISHED[name] - 1) < 0.01, f"{name}: {count / 1e9:.3f}B"


def test_llama_8b_is_exact() -> None:
    # 8,030,261,248: the sum of the shapes in the checkpoint's safetensors index.
    assert weights.parameter_count(_describe("llama-3.1-8b")) == 8_030_261_248


def test_tp_divides_layers_and_replicates_norms() -> None:
    d = _describe("llama-3.1-8b")
    one = weights.stage_params(d, 1, 0, 32, first=True, last=True)
    two = weights.stage_params(d, 2, 0, 32, first=True, last=True)
    assert two.linear * 2 == one.linear
    assert two.embed * 2 == one.embed
    assert two.plain == one.plain


def test_pp_puts_embeddings_first_and_head_last() -> None:
    d = _describe("llama-3.1-8b")
    first = weights.stage_params(d, 1, 0, 16, first=True, last=False)
    last = weights.stage_params(d, 1, 16, 32, first=False, last=True)
    assert first.embed == last.embed == 128256 * 4096
    assert first.total + last.total == weights.parameter_count(d)


def test_tied_embeddings_are_one_copy_at_pp1_and_two_at_pp2() -> None:
    d = _describe("qwen3-0.6b")  # tie_word_embeddings: true
    whole = weights.stage_params(d, 1, 0, 28, first=True, last=True)
    last = weights.stage_params(d, 1, 14, 28, first=False, last=True)
    assert whole.embed == 151936 * 1024
    assert last.embed == 151936 * 1024


def test_mxfp4_quantizes_only_experts() -> None:
    how = weights.storage(_describe("gpt-oss-20b").config, 2)
    assert how.linear == how.embed == how.plain == 2
    # Hopper (Triton, vLLM 0.33): the swizzled experts of gpt-oss-20b TP 1 take 10,188,226,560 B
    # for 24 layers x 32 experts x 3 x 2880 x 2880 parameters (the oracle's uint8 bytes).
    assert how.experts == pytest.approx(10_188_226_560 / (24 * 32 * 3 * 2880 * 2880))


def test_fp8_block_scales() -> None:
    how = weights.storage(_describe("deepseek-v3").config, 2)
    assert how.linear == pytest.approx(1 + 4 / (128 * 128))
    assert how.embed == 2


def test_awq_four_bit() -> None:
    cfg = {"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}
    # Hopper, vLLM 0.19+: Machete keeps a bf16 zero point per group and output (vLLM 0.33 on the
    # oracle: qkv_proj.qzeros [32, 3072] bfloat16 next to scales [32, 3072] for Llama-3.1-8B TP2).
    assert weights.storage(cfg, 2).linear == pytest.approx(0.5 + 4 / 128)
    # Marlin (Ampere, or Hopper before 0.19): zero points packed 8 to an int32 like the checkpoint.
    assert weights.storage(cfg, 2, arch="ampere").linear == pytest.approx(0.5 + 2.5 / 128)
    old = weights.storage(cfg, 2, release=resolve_release("0.18.0"))
    assert old.linear == pytest.approx(0.5 + 2.5 / 128)


def _write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    sizes = {"BF16": 2, "F32": 4, "U8": 1}
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    # The tensor bytes are never read, so the file holds only the header (truncated data).
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_safetensors_headers_give_exact_stage_bytes(tmp_path: Path) -> None:
    _write_safetensors(
        tmp_path / "model-00001-of-00001.safetensors",
        {
            "model.embed_tokens.weight": ("BF16", [1000, 64]),
            "model.layers.0.self_attn.q_proj.weight": ("BF16", [64, 64]),
            "model.layers.0.input_layernorm.weight": ("BF16", [64]),
            "model.layers.1.mlp.down_proj.weight": ("BF16", [64, 128]),
            "model.norm.weight": ("BF16", [64]),
            "lm_head.weight": ("BF16", [1000, 64]),
        },
    )
    assert [t.nbytes for t in safetensors_header.read_header(next(tmp_path.glob("*.safetensors")))] == [
        128000,
        8192,
        128,
        16384,
        128,
        128000,
    ]
    d = _describe("llama-3.2-1b")
    pp2 = Serving(pp=2)
    first = safetensors_header.stage_bytes(d, pp2, tmp_path, 0, 1, first=True, last=False)
    last = safetensors_header.stage_bytes(d, pp2, tmp_path, 1, 2, first=False, last=True)
    assert first is not None and first.bytes == 128000 + 8192 + 128
    assert last is not None and last.bytes == 16384 + 128 + 128000
    tp2 = safetensors_header.stage_bytes(d, Serving(tp=2), tmp_path, 0, 2, first=True, last=True)
    assert tp2 is not None and tp2.bytes == (128000 + 8192 + 16384 + 128000) // 2 + 128 + 128


def test_stage_weights_use_headers_when_present(tmp_path: Path) -> None:
    _write_safetensors(
        tmp_path / "model.safetensors", {"model.layers.0.mlp.up_proj.weight": ("BF16", [8, 8])}
    )
    d = _describe("llama-3.2-1b")
    est = weights.stage_weight_bytes(d, Serving(), 0, 0, 16, tmp_path)
    assert est.bytes == 128 and est.estimated is False and est.source.startswith("safetensors headers")
    assert weights.stage_weight_bytes(d, Serving(), 0, 0, 16, tmp_path / "none").estimated is True


def test_mxfp4_layout_follows_the_moe_backend() -> None:
    cfg = _describe("gpt-oss-20b").config  # hidden 2880, expert intermediate 2880
    # Marlin (Ampere): hidden to 256 (3072), intermediate to 128 (2944); 4 bits + a scale byte per 32.
    marlin = weights.storage(cfg, 2, arch="ampere")
    assert marlin.experts == pytest.approx(4.25 / 8 * 3072 * 2944 / (2880 * 2880))
    # FlashInfer TRT-LLM (B200): hidden to 256, intermediate to 128 from 0.27 (256 before).
    trtllm = weights.storage(cfg, 2, arch="blackwell")
    assert trtllm.experts == pytest.approx(4.25 / 8 * 3072 * 2944 / (2880 * 2880))
    old = weights.storage(cfg, 2, arch="blackwell", release=resolve_release("0.26.0"))
    assert old.experts == pytest.approx(4.25 / 8 * 3072 * 3072 / (2880 * 2880))
    # At TP 4 the per-rank intermediate 720 rounds to 768 on Marlin.
    assert weights.storage(cfg, 2, arch="ampere", tp=4).experts == pytest.approx(
        4.25 / 8 * 3072 * 768 / (2880 * 720)
    )


def test_mxfp4_on_hopper_is_marlin_before_0_12() -> None:
    # get_mxfp4_backend before 0.12: Marlin unless triton_kernels is installed (vLLM vendors it
    # from 0.12.0): intermediate rounded to 128 (2944), not 64 (2880).
    cfg = _describe("gpt-oss-20b").config
    old = weights.storage(cfg, 2, arch="hopper", hopper_triton=False)
    assert old.experts == pytest.approx(4.25 / 8 * 3072 * 2944 / (2880 * 2880))
    assert weights.storage(cfg, 2, arch="hopper").experts < old.experts


def test_fp8_blocks_go_through_marlin_on_ampere() -> None:
    # Fp8LinearMethod.use_marlin below compute capability 8.9: bf16 scales per group of 128 inputs.
    cfg = _describe("deepseek-v3").config
    assert weights.storage(cfg, 2, arch="ampere").linear == pytest.approx(1 + 2 / 128)
    assert weights.storage(cfg, 2, arch="ada").linear == pytest.approx(1 + 4 / (128 * 128))


def test_gptq_marlin_drops_the_zero_points_of_a_symmetric_checkpoint() -> None:
    # qweight 4 bits + fp16 scale per 128 inputs; Marlin (Ampere) replaces a symmetric GPTQ's
    # qzeros with an empty tensor (vLLM 0.33 on the oracle: qkv_proj.qzeros [0] int32).
    gptq = {"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True}}
    assert weights.storage(gptq, 2, arch="ampere").linear == pytest.approx(0.5 + 2 / 128)
    # Machete (Hopper) leaves the loaded qzeros in place (the oracle: qzeros [32, 384] int32).
    assert weights.storage(gptq, 2).linear == pytest.approx(0.5 + 2.5 / 128)
    # No Marlin before Ampere: the checkpoint's layout stays.
    assert weights.storage(gptq, 2, arch="turing").linear == pytest.approx(0.5 + 2.5 / 128)


def test_ignored_layers_stay_unquantized() -> None:
    # compressed-tensors ignore list naming the attention of every layer: attention in 16 bits.
    quant = {
        "quant_method": "compressed-tensors",
        "ignore": ["lm_head", "re:.*self_attn.*"],
        "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}},
    }
    how = weights.storage({"quantization_config": quant}, 2, num_layers=32)
    assert how.kept == {"attention": 1.0}
    p = weights.Params(attention=100, mlp=300)
    assert how.bytes(p) == 100 * 2 + 300 * 1
    # modules_to_not_convert naming layers 0 and 1 of 4: half the attention is kept.
    half = {
        "quant_method": "fp8",
        "modules_to_not_convert": ["model.layers.0.self_attn", "model.layers.1.self_attn"],
    }
    assert weights.storage({"quantization_config": half}, 2, num_layers=4).kept == {"attention": 0.5}


def test_quantization_flag_quantizes_a_config_without_quantization_config() -> None:
    d = _describe("llama-3.1-8b")
    plain = weights.stage_weight_bytes(d, Serving(), 0, 0, 32)
    fp8 = weights.stage_weight_bytes(d, Serving(quantization="fp8"), 0, 0, 32)
    params = weights.stage_params(d, 1, 0, 32, first=True, last=True)
    # Linears drop from 2 bytes to 1; embeddings, head and norms stay in bf16.
    assert plain.bytes - fp8.bytes == params.linear
    assert "--quantization" in fp8.source


def test_quantization_flag_must_match_the_checkpoint() -> None:
    from kvplan.errors import PlannerRefusal

    cfg = _describe("deepseek-v3").config  # quant_method fp8
    with pytest.raises(PlannerRefusal) as err:
        weights.storage(cfg, 2, "awq")
    # vLLM's ModelConfig._verify_quantization text.
    assert err.value.vllm_message == (
        "Quantization method specified in the model config (fp8) does not match the quantization "
        "method specified in the `quantization` argument (awq)."
    )
    awq = {"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}
    assert weights.storage(awq, 2, "awq_marlin").linear == pytest.approx(0.5 + 4 / 128)


def test_release_refuses_a_quantization_name_it_does_not_know() -> None:
    from kvplan.errors import PlannerRefusal

    cfg = _describe("llama-3.1-8b").config
    # bitsandbytes is in QuantizationMethods up to 0.27 and gone from 0.28 (vllm/model_executor/
    # layers/quantization/__init__.py); vLLM 0.33 on the oracle: "Unknown quantization method:
    # bitsandbytes. Must be one of ['awq', 'auto_awq', 'fp8', ..." from ModelConfig.
    with pytest.raises(PlannerRefusal) as err:
        weights.storage(cfg, 2, "bitsandbytes", release=resolve_release("0.33.0"))
    assert err.value.vllm_message.startswith(
        "Unknown quantization method: bitsandbytes. Must be one of ['awq', 'auto_awq', 'fp8', "
    )
    assert weights.storage(cfg, 2, "bitsandbytes", release=resolve_release("0.27.0")).linear < 1


def test_gptq_act_order_is_refused_from_0_30() -> None:
    from kvplan.errors import PlannerRefusal

    gptq = {"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": True}}
    # vLLM 0.33 on the oracle (llama-3.1-8b-gptq-actorder-tp2): config_error with this text
    # (gptq_utils.normalize_and_validate_gptq_desc_act, first in 0.30.0).
    with pytest.raises(PlannerRefusal) as err:
        weights.storage(gptq, 2, release=resolve_release("0.30.0"))
    assert err.value.vllm_message == (
        "GPTQ group activation ordering (desc_act=True) is no longer supported. Use a checkpoint "
        "with static activation ordering or desc_act=False."
    )
    assert weights.storage(gptq, 2, release=resolve_release("0.29.0")).linear < 1
    per_channel = {"quantization_config": {**gptq["quantization_config"], "group_size": -1}}
    assert weights.storage(per_channel, 2, release=resolve_release("0.33.0")).linear == pytest.approx(0.5)


def test_float32_dtype_doubles_the_unquantized_bytes() -> None:
    d = _describe("llama-3.2-1b")
    half = weights.stage_weight_bytes(d, Serving(), 0, 0, 16)
    full = weights.stage_weight_bytes(d, Serving(dtype="float32"), 0, 0, 16)
    rope = weights.rotary_cache_bytes(d)
    assert full.bytes - rope == 2 * (half.bytes - rope)


def test_missing_shards_use_the_index_total_size(tmp_path: Path) -> None:
    _write_safetensors(
        tmp_path / "model-00001-of-00002.safetensors", {"model.embed_tokens.weight": ("BF16", [8, 8])}
    )
    index = {
        "metadata": {"total_size": 2_000_000_000},
        "weight_map": {
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors",
        },
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    d = _describe("llama-3.2-1b")
    est = weights.stage_weight_bytes(d, Serving(), 0, 0, 16, tmp_path)
    # One stage, one rank: the whole total_size (plus the RoPE cache), never the 128 bytes present.
    assert est.bytes == 2_000_000_000 + weights.rotary_cache_bytes(d)
    assert est.estimated is True and "1 of 2 shards missing" in est.source


def test_checkpoint_experts_split_as_vllm_splits_them(tmp_path: Path) -> None:
    # 4 routed experts of 8x8 bf16 (128 B each) in layer 0, a replicated router.
    tensors = {f"model.layers.0.mlp.experts.{e}.down_proj.weight": ("BF16", [8, 8]) for e in range(4)}
    tensors["model.layers.0.mlp.gate.weight"] = ("BF16", [4, 8])
    _write_safetensors(tmp_path / "model.safetensors", tensors)
    d = _describe("qwen3-30b-a3b")
    # TP 1 x DP 2 without EP: each expert divided over the 2 ranks (FusedMoEParallelConfig.make).
    dp = Serving(dp=2)
    got = safetensors_header.stage_bytes(d, dp, tmp_path, 0, 1, first=False, last=False)
    assert got is not None and got.bytes == 4 * 128 // 2 + 64
    # With EP over 48 ranks: the model's 128 experts are 32 x 3 + 16 x 2 (determine_expert_map:
    # the first 128 % 48 ranks hold one more), so rank 0 holds experts 0-2 of the file's 0-3.
    ep = Serving(dp=48, enable_expert_parallel=True)
    got = safetensors_header.stage_bytes(d, ep, tmp_path, 0, 1, first=False, last=False)
    assert got is not None and got.bytes == 3 * 128 + 64


def test_a_quantized_checkpoint_is_counted_in_vllms_layout_not_its_headers() -> None:
    # tests/oracle/configs/llama-3.1-8b-gptq holds AutoGPTQ's safetensors header (qweight, qzeros,
    # scales, g_idx); vLLM drops g_idx and (on Ampere) qzeros after loading, so the config count,
    # held against vLLM 0.33 in test_weights_oracle, is used rather than the header's bytes.
    folder = Path(__file__).parent / "oracle" / "configs" / "llama-3.1-8b-gptq"
    d = families.describe(resolve_model(str(folder)), resolve_release("0.33.0"))
    with_headers = weights.stage_weight_bytes(d, Serving(), 0, 0, 32, folder, arch="ampere")
    from_config = weights.stage_weight_bytes(d, Serving(), 0, 0, 32, arch="ampere")
    assert with_headers.estimated and with_headers.bytes == from_config.bytes
    headers = safetensors_header.stage_bytes(d, Serving(), folder, 0, 32, first=True, last=True)
    assert headers is not None and headers.bytes > from_config.bytes - weights.rotary_cache_bytes(d)
