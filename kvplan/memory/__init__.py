"""The KV cache memory of each stage: given exactly, or estimated from the GPU
(weights, safetensors headers, activation peak, runtime terms, the GPU probe)."""
