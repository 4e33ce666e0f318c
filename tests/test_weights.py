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
    assert how.experts == pytest.approx(4.25 / 8 * 3072 / 2880)


def test_fp8_block_scales() -> None:
    how = weights.storage(_describe("deepseek-v3").config, 2)
    assert how.linear == pytest.approx(1 + 4 / (128 * 128))
    assert how.embed == 2


def test_awq_four_bit() -> None:
    how = weights.storage({"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}, 2)
    assert how.linear == pytest.approx(0.5 + 2.5 / 128)


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


def test_serve_batch_defaults() -> None:
    new, old = resolve_release("0.33"), resolve_release("0.15")
    gib = 1 << 30
    assert weights.serve_batch_defaults(int(79.19 * gib), "H100-80GB", old) == (8192, 1024)
    assert weights.serve_batch_defaults(int(79.15 * gib), "A100-80GB", old) == (2048, 256)
    assert weights.serve_batch_defaults(int(178.4 * gib), "B200", new) == (16384, 1024)
    assert weights.serve_batch_defaults(int(178.4 * gib), "B200", old) == (8192, 1024)
