"""What transformers' text config classes fill in when a config.json leaves a key out.

A wrapper's text section is often partial (LLaVA-1.5's names only its
``model_type``, vocabulary and length), and vLLM reads the backbone's keys
from the config object transformers built, defaults included.  These are the
class defaults of transformers 5.20.2 (``transformers/models/<name>/
configuration_<name>.py``, the dataclass field values) for the keys kvplan's
derivers read; values a class computes from others (``head_dim`` as
hidden_size / heads, ``num_key_value_heads`` as the head count) are left to
the derivers, which compute them the same way.
"""

from __future__ import annotations

from typing import Any

_QWEN2_WINDOW = {"use_sliding_window": False, "sliding_window": 4096}

TEXT_DEFAULTS: dict[str, dict[str, Any]] = {
    # llama/configuration_llama.py LlamaConfig
    "llama": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 2048,
    },
    # mistral/configuration_mistral.py MistralConfig
    "mistral": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
    },
    # mixtral/configuration_mixtral.py MixtralConfig
    "mixtral": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131072,
    },
    # qwen2/configuration_qwen2.py Qwen2Config
    "qwen2": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 32768,
        "max_window_layers": 28,
        **_QWEN2_WINDOW,
    },
    # qwen2_moe/configuration_qwen2_moe.py Qwen2MoeConfig
    "qwen2_moe": {
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "max_position_embeddings": 32768,
        "max_window_layers": 28,
        **_QWEN2_WINDOW,
    },
    # qwen3/configuration_qwen3.py Qwen3Config
    "qwen3": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "head_dim": 128,
        "max_position_embeddings": 32768,
        "max_window_layers": 28,
        **_QWEN2_WINDOW,
    },
    # qwen3_moe/configuration_qwen3_moe.py Qwen3MoeConfig
    "qwen3_moe": {
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "max_position_embeddings": 32768,
        **_QWEN2_WINDOW,
    },
    # qwen2_vl/configuration_qwen2_vl.py Qwen2VLTextConfig
    "qwen2_vl_text": {
        "hidden_size": 8192,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "max_position_embeddings": 32768,
        "max_window_layers": 80,
        **_QWEN2_WINDOW,
    },
    # qwen2_5_vl/configuration_qwen2_5_vl.py Qwen2_5_VLTextConfig
    "qwen2_5_vl_text": {
        "hidden_size": 8192,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "max_position_embeddings": 32768,
        "max_window_layers": 80,
        **_QWEN2_WINDOW,
    },
    # qwen3_vl/configuration_qwen3_vl.py Qwen3VLTextConfig (no window field)
    "qwen3_vl_text": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "head_dim": 128,
        "max_position_embeddings": 128000,
    },
    # qwen3_vl_moe/configuration_qwen3_vl_moe.py Qwen3VLMoeTextConfig (the class sets
    # sliding_window to None whatever the file says)
    "qwen3_vl_moe_text": {
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "max_position_embeddings": 128000,
    },
    # gemma2/configuration_gemma2.py Gemma2Config
    "gemma2": {
        "hidden_size": 2304,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "max_position_embeddings": 8192,
        "sliding_window": 4096,
    },
    # gemma3/configuration_gemma3.py Gemma3TextConfig
    "gemma3_text": {
        "vocab_size": 262208,
        "hidden_size": 2304,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
    },
    # cohere2/configuration_cohere2.py Cohere2Config
    "cohere2": {
        "hidden_size": 8192,
        "num_hidden_layers": 40,
        "num_attention_heads": 64,
        "max_position_embeddings": 8192,
        "sliding_window": 4096,
    },
    # phi3/configuration_phi3.py Phi3Config
    "phi3": {
        "hidden_size": 3072,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 4096,
    },
    # granite/configuration_granite.py GraniteConfig
    "granite": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 2048,
    },
    # exaone4/configuration_exaone4.py Exaone4Config
    "exaone4": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 2048,
        "sliding_window": 4096,
        "sliding_window_pattern": 4,
    },
    # afmoe/configuration_afmoe.py AfmoeConfig
    "afmoe": {
        "hidden_size": 2048,
        "num_hidden_layers": 32,
        "num_attention_heads": 16,
        "head_dim": 128,
        "max_position_embeddings": 16384,
        "sliding_window": 1024,
        "global_attn_every_n_layers": 4,
    },
    # apertus/configuration_apertus.py ApertusConfig
    "apertus": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 65536,
    },
    # cohere2_moe/configuration_cohere2_moe.py Cohere2MoeConfig
    "cohere2_moe": {
        "hidden_size": 8192,
        "num_hidden_layers": 40,
        "num_attention_heads": 64,
        "head_dim": 128,
        "max_position_embeddings": 8192,
        "sliding_window": 4096,
        "sliding_window_pattern": 4,
        "prefix_dense_sliding_window_pattern": 1,
    },
    # exaone_moe/configuration_exaone_moe.py ExaoneMoeConfig
    "exaone_moe": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 2048,
        "sliding_window": 4096,
        "sliding_window_pattern": 4,
    },
    # laguna/configuration_laguna.py LagunaConfig
    "laguna": {
        "hidden_size": 2048,
        "num_hidden_layers": 40,
        "num_attention_heads": 48,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 131072,
        "sliding_window": 512,
    },
    # granite_swa/configuration_granite_swa.py GraniteSWAConfig
    "granite_swa": {
        "hidden_size": 2560,
        "num_hidden_layers": 24,
        "num_attention_heads": 20,
        "num_key_value_heads": 4,
        "max_position_embeddings": 8192,
        "sliding_window": 128,
    },
    # granitemoe_swa/configuration_granitemoe_swa.py GraniteMoeSWAConfig
    "granitemoe_swa": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 2048,
        "sliding_window": 128,
    },
    # muse_glimmer/configuration_muse_glimmer.py MuseGlimmerTextConfig
    "muse_glimmer_text": {
        "hidden_size": 6656,
        "num_hidden_layers": 52,
        "num_attention_heads": 32,
        "num_key_value_heads": 2,
        "head_dim": 128,
        "max_position_embeddings": 131072,
        "sliding_window": 2048,
    },
    # glm4v/configuration_glm4v.py Glm4vTextConfig
    "glm4v_text": {
        "hidden_size": 4096,
        "num_hidden_layers": 40,
        "num_attention_heads": 32,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
    },
    # glm4v_moe/configuration_glm4v_moe.py Glm4vMoeTextConfig (no head_dim field)
    "glm4v_moe_text": {
        "hidden_size": 4096,
        "num_hidden_layers": 46,
        "num_attention_heads": 96,
        "num_key_value_heads": 8,
        "max_position_embeddings": 65536,
    },
    # glm_ocr/configuration_glm_ocr.py GlmOcrTextConfig
    "glm_ocr_text": {
        "hidden_size": 1024,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131072,
    },
    # paddleocr_vl/configuration_paddleocr_vl.py PaddleOCRTextConfig
    "paddleocr_vl_text": {
        "hidden_size": 1024,
        "num_hidden_layers": 18,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "head_dim": 128,
        "max_position_embeddings": 131072,
    },
    # cosmos3_edge/configuration_cosmos3_edge.py Cosmos3EdgeTextConfig
    "cosmos3_edge_text": {
        "hidden_size": 2048,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 131072,
    },
    # cohere_compass/configuration_cohere_compass.py CohereCompassTextConfig
    "cohere_compass_text": {
        "hidden_size": 8192,
        "num_hidden_layers": 40,
        "num_attention_heads": 64,
        "max_position_embeddings": 8192,
        "sliding_window": 4096,
    },
    # vLLM's own config classes, which vLLM registers for these model types in
    # place of any transformers class (vllm/transformers_utils/configs/beam.py,
    # vllm/models/flint/configs.py).
    "beam": {
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "max_position_embeddings": 32768,
        "sliding_window": 4096,
    },
    "flint": {
        "hidden_size": 2048,
        "num_hidden_layers": 49,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "max_position_embeddings": 262144,
        "use_sliding_window": True,
        "sliding_window": 513,
    },
}
