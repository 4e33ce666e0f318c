"""Stages 3 and 4, the reproduction of vLLM: per-layer specs per TP rank, the
platform's block sizes, the pipeline split, and the planner, release by release."""
