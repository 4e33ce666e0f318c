"""One module per KV cache family: how vLLM's model code builds each layer."""
