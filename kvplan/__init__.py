"""kvplan: plan vLLM's KV cache from a model config, without a GPU."""

__version__ = "0.1.0"
