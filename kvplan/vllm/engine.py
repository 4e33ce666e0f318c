"""The engine settings vLLM resolves before it plans the KV cache: which model
runner runs the model, whether scheduling is asynchronous, and how many
batches (so how many tokens) can be in flight at once.

Sliding-window and chunked groups reserve ``max_in_flight_tokens =
max_concurrent_batches x max_num_batched_tokens`` (0.26+), so these settings
change the fit check and the capacity vLLM reports.  The rules are those of
``VllmConfig.use_v2_model_runner``, ``_is_default_v2_model_runner_model``,
the async-scheduling resolution in ``VllmConfig.__post_init__`` and
``VllmConfig.max_concurrent_batches``; what changed between releases is in
``kvplan.releases``.
"""

from __future__ import annotations

from typing import Any

from kvplan.inputs.serving import Serving
from kvplan.model.layers import AttentionLayer, MambaLayer, MLALayer, ModelDescription
from kvplan.records import record
from kvplan.releases import Release

# vLLM's CONFIG_FIELD_ALIASES["num_experts"]: the keys a text config names its experts by.
_EXPERT_KEYS = ("num_experts", "moe_num_experts", "n_routed_experts", "num_local_experts")


@record(frozen=True)
class Engine:
    """What vLLM resolved for the model runner and the scheduler."""

    v2_model_runner: bool
    async_scheduling: bool
    max_concurrent_batches: int
    why_runner: str

    def max_in_flight_tokens(self, max_num_batched_tokens: int) -> int:
        """Tokens scheduled but not yet settled: every concurrent batch may be full."""
        return self.max_concurrent_batches * max_num_batched_tokens


def is_moe(config: dict[str, Any]) -> bool:
    """Whether the text config has routed experts (vLLM's ``ModelConfig.is_moe``)."""
    for key in _EXPERT_KEYS:
        value = config.get(key)
        if isinstance(value, list):
            value = value[0] if value else 0
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return True
    return False


def is_quantized(config: dict[str, Any], serving: Serving) -> bool:
    """Whether the checkpoint (or ``--quantization``) is quantized."""
    return isinstance(config.get("quantization_config"), dict) or bool(getattr(serving, "quantization", None))


def _default_v2(model: ModelDescription, serving: Serving, release: Release) -> tuple[bool, str]:
    """Whether the release runs this model on the V2 model runner by default, and why."""
    rule = release.behaviour.v2_runner
    if rule == "never":
        return False, f"vLLM {release.version} runs every model on the V1 runner by default"
    if rule == "all":
        return True, f"vLLM {release.version} runs every supported model on the V2 runner"
    listed = model.architecture in release.behaviour.v2_architectures
    moe = is_moe(model.config)
    attention = any(isinstance(layer, AttentionLayer | MLALayer) for layer in model.layers)
    recurrent = any(isinstance(layer, MambaLayer) for layer in model.layers)
    if rule == "listed_dense_unquantized":
        ok = listed and not moe and not is_quantized(model.config, serving)
        return ok, "listed, dense and unquantized" if ok else "not a listed dense unquantized model"
    if rule == "listed":
        return listed, "listed architecture" if listed else "not a listed architecture"
    if recurrent and not attention:
        return False, "attention-free models run on the V1 runner"
    if recurrent and not (rule == "listed_or_dense_hybrid_listed" and listed):
        return False, "hybrid models run on the V1 runner unless listed"
    ok = listed or not moe
    return ok, "listed or not a mixture of experts" if ok else "an unlisted mixture of experts"


def resolve(model: ModelDescription, serving: Serving, release: Release) -> Engine:
    """The model runner, async scheduling and concurrent batches vLLM resolves."""
    v2, why = _default_v2(model, serving, release)
    pp = serving.pp
    if getattr(serving, "async_scheduling", None) is not None:
        asynchronous = bool(serving.async_scheduling)  # type: ignore[attr-defined]
    elif release.behaviour.v1_async_without_pp and not v2 and pp > 1:
        asynchronous = False  # the V1 runner cannot overlap batches under pipeline parallelism
    else:
        asynchronous = release.behaviour.async_scheduling_default
    return Engine(v2, asynchronous, concurrent_batches(pp, asynchronous, v2), why)


def concurrent_batches(pp: int, asynchronous: bool, v2_model_runner: bool) -> int:
    """vLLM's ``max_concurrent_batches``: a batch per PP stage, and one more in flight
    with async scheduling (the V1 runner overlaps batches only without PP)."""
    if asynchronous and v2_model_runner:
        return pp + 1
    if asynchronous and pp <= 1:
        return 2
    return pp
