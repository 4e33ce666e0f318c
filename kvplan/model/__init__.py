"""Stage 2, the model: a validated description of its KV-cache-holding layers,
derived family by family from its config (or given explicitly)."""
