"""Multimodal wrappers: kvplan's layers equal those vLLM's own model code builds.

For every case of ``tests/oracle/cases/multimodal.json`` (a config under
``tests/oracle/configs``, TP and PP), ``tests/oracle/fixtures/multimodal/
vllm-<version>.json`` records the KV cache spec of every layer vLLM built on
each pipeline stage (``tools/oracle_family.py`` runs vLLM's model code on the
meta device).  kvplan derives the same config and must name the same layers
with the same specs: class, block size, KV heads per rank, head sizes, dtype,
window, page size.
"""

from __future__ import annotations

import pytest
from oracle_layers import cases, check

from kvplan import api
from kvplan.errors import InputError
from tools.oracle_oldest import extra_runs

FAMILY = "multimodal"
VERSIONS = ("0.33.0", "0.19.1")


def _params():
    for version in VERSIONS:
        for case in cases(FAMILY):
            yield pytest.param(version, case, id=f"{version}-{case['id']}")
    # and on the oldest release serving the case's architecture
    for version, case in extra_runs(FAMILY, VERSIONS):
        yield pytest.param(version, case, id=f"{version}-{case['id']}")


# Cases vLLM's code could not build for a reason outside its KV cache decisions
# (keys its vision or audio code reads that the generated config lacks, a model
# type the release's transformers does not know); kvplan is not compared there.
ORACLE_GAPS = {
    ("*", "qwen3-omni-moe-defaults"): "vision_config lacks keys vLLM's Qwen3-Omni vision encoder reads",
    ("*", "voxtral-mini-3b"): "audio_config lacks keys vLLM reads from a Mistral-format params.json",
    ("*", "isaac-defaults"): "vLLM's Isaac model reads its vision token from the tokenizer (none here)",
    ("*", "midashenglm-defaults"): "vLLM's MiDashengLM module imports torchaudio (not installed here)",
    ("*", "fun-asr-nano-defaults"): "vLLM's FunASR module imports torchaudio (not installed here)",
    ("*", "openvla-defaults"): "vLLM's OpenVLA vision backbone needs timm (not installed here)",
    ("*", "internvl-chat-qwen3-8b"): "vLLM's InternVL processor needs a tokenizer while the config is built",
    ("*", "llama-nemotron-nano-vl-qwen3"): "vLLM builds its vision model through AutoModel from remote code",
    ("*", "ovis-qwen2"): "vLLM's Ovis visual tokenizer needs a backbone_config the class default lacks",
    (
        "*",
        "interns1-pro-like",
    ): "vLLM's InternS1-Pro needs FoPE rope parameters, which only its own config has",
    ("*", "dots-ocr-defaults"): "the dots_ocr model type needs the checkpoint's remote configuration code",
    ("0.19.1", "audioflamingo3-defaults"): "transformers 4.57 has no audioflamingo3 config",
    ("0.19.1", "glmasr-defaults"): "transformers 4.57 has no glmasr config",
    ("0.19.1", "lighton-ocr-defaults"): "transformers 4.57 has no lighton_ocr config",
}


@pytest.mark.parametrize(("version", "case"), list(_params()))
def test_layers_equal_vllm(version, case):
    check(FAMILY, version, case, ORACLE_GAPS)


def test_llava_15_fills_llama_defaults():
    # llava-1.5-7b's text_config names only model_type llama, vocab and length: LlamaConfig's
    # defaults give 32 layers, 32 heads, 32 KV heads (= heads), head 4096 / 32 = 128; the top
    # level's float16 is the model dtype.  Page: 16 x 2 x 32 x 128 x 2 = 262,144 B.
    r = api.plan("tests/oracle/configs/llava-1.5-7b/config.json", kv_cache_memory="20GiB")
    specs = r.layout.stage_specs[0]
    assert list(specs)[0] == "language_model.model.layers.0.self_attn.attn" and len(specs) == 32
    spec = specs["language_model.model.layers.0.self_attn.attn"]
    assert (spec.num_kv_heads, spec.head_size, spec.dtype, spec.page_size_bytes) == (
        32,
        128,
        "float16",
        262144,
    )


def test_top_level_dtype_wins_over_the_text_sections():
    # llava-v1.6-mistral-7b: text_config says bfloat16, the top level float16; vLLM takes the
    # top level's (model_arch_config_convertor.get_torch_dtype).
    r = api.plan("tests/oracle/configs/llava-v1.6-mistral-7b/config.json", kv_cache_memory="20GiB")
    assert r.description.dtype == "float16"


def test_qwen25_vl_reads_the_flat_config():
    # Qwen2.5-VL-7B keeps its text keys at the top level (no text_config): 28 layers,
    # 4 KV heads, head 3584 / 28 = 128; at TP 4 one KV head per rank.
    r = api.plan("qwen2.5-vl-7b", kv_cache_memory="20GiB", tp=4)
    spec = r.layout.stage_specs[0]["language_model.model.layers.27.self_attn.attn"]
    assert (spec.num_kv_heads, spec.head_size) == (1, 128)


def test_wrapper_of_a_text_model_kvplan_lacks_names_it():
    # RwkvForCausalLM is in no vLLM release's registry; the refusal names it and the wrapper.
    cfg = {
        "architectures": ["LlavaForConditionalGeneration"],
        "text_config": {"model_type": "rwkv", "architectures": ["RwkvForCausalLM"], "num_hidden_layers": 24},
    }
    with pytest.raises(InputError, match="LlavaForConditionalGeneration.s text model .RwkvForCausalLM."):
        api.plan(cfg, kv_cache_memory="20GiB")


def test_minicpmv_picks_its_text_model_by_version():
    # minicpmv.py: version 2.6 builds Qwen2ForCausalLM (head hidden / heads), 4.5 Qwen3ForCausalLM.
    base = {
        "architectures": ["MiniCPMV"],
        "hidden_size": 3584,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "num_hidden_layers": 28,
        "max_position_embeddings": 32768,
    }
    r = api.plan({**base, "version": 2.6}, kv_cache_memory="20GiB")
    assert list(r.layout.stage_specs[0])[0] == "llm.model.layers.0.self_attn.attn"
    with pytest.raises(InputError, match="versions"):
        api.plan({**base, "version": "3.0"}, kv_cache_memory="20GiB")


def test_ultravox_naming_another_checkpoint_is_refused():
    cfg = {"architectures": ["UltravoxModel"], "text_model_id": "meta-llama/Llama-3.1-8B-Instruct"}
    with pytest.raises(InputError, match="another checkpoint"):
        api.plan(cfg, kv_cache_memory="20GiB")


def test_minicpmo_without_version_is_refused():
    # minicpmo.py picks its 2.6 class when the config has no version, and that class's
    # MiniCPM-V base then reads 2.0 or 2.5 and fails: vLLM cannot build it.
    cfg = {
        "architectures": ["MiniCPMO"],
        "hidden_size": 3584,
        "num_attention_heads": 28,
        "num_hidden_layers": 28,
    }
    with pytest.raises(InputError, match="version"):
        api.plan(cfg, kv_cache_memory="20GiB")
