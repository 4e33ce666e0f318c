"""The model runner, async scheduling and concurrent batches vLLM resolves, release by release.

Expected values read from each wheel's vllm/config/vllm.py: ``use_v2_model_runner``,
``_is_default_v2_model_runner_model`` (with DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES),
the async-scheduling default in ``__post_init__``, and ``max_concurrent_batches``
(``pp + 1`` with async scheduling on the V2 runner; 2 on V1 without PP; else ``pp``).
"""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.inputs.models import resolve_model
from kvplan.inputs.serving import Serving
from kvplan.model.describe import describe
from kvplan.releases import resolve_release
from kvplan.vllm.engine import resolve

MEM = {"kv_cache_memory": "40GiB"}


def engine(preset: str, version: str, pp: int = 1):
    release = resolve_release(version)
    return resolve(describe(resolve_model(preset), release), Serving(pp=pp), release)


@pytest.mark.parametrize(
    ("preset", "version", "v2"),
    [
        ("llama-3.1-8b", "0.21.0", False),  # VLLM_USE_V2_MODEL_RUNNER defaults to 0
        ("qwen3-8b", "0.22.0", True),  # the only listed architecture in 0.22
        ("llama-3.1-8b", "0.22.0", False),
        ("llama-3.1-8b", "0.23.0", True),  # Llama, Mistral, Qwen3 listed in 0.23
        ("qwen3-30b-a3b", "0.23.0", False),  # listed, but a mixture of experts
        ("gemma-3-27b", "0.24.0", False),  # 0.24 runs only the listed architectures on V2
        ("gemma-3-27b", "0.25.0", True),  # 0.25: any model without experts
        ("qwen3-30b-a3b", "0.26.0", False),  # an unlisted mixture of experts
        ("nemotron-h-8b", "0.28.0", False),  # hybrids only when listed (0.27 - 0.28)
        ("mamba-codestral-7b", "0.26.0", False),  # attention-free
        ("nemotron-h-8b", "0.29.0", True),  # 0.29+: every supported model
        ("qwen3-30b-a3b", "0.33.0", True),
    ],
)
def test_v2_runner_by_default(preset, version, v2):
    assert engine(preset, version).v2_model_runner is v2


@pytest.mark.parametrize(
    ("preset", "version", "pp", "batches"),
    [
        ("gemma-3-27b", "0.33.0", 2, 3),  # V2, async: pp + 1
        ("gemma-3-27b", "0.33.0", 1, 2),
        ("nemotron-h-8b", "0.28.0", 2, 2),  # V1: one batch per stage under PP
        ("nemotron-h-8b", "0.28.0", 1, 2),  # V1, async, no PP: two
        ("gemma-3-27b", "0.11.0", 1, 1),  # no async scheduling by default before 0.14
    ],
)
def test_concurrent_batches(preset, version, pp, batches):
    assert engine(preset, version, pp).max_concurrent_batches == batches


def test_v1_runner_turns_async_off_under_pp_on_033():
    # 0.33 VllmConfig.__post_init__: the V1 runner does not support async scheduling with PP.
    release = resolve_release("0.33.0")
    model = describe(resolve_model("gemma-3-27b"), release)
    assert resolve(model, Serving(pp=2), release).async_scheduling is True  # V2 by default
    assert release.behaviour.v1_async_without_pp


def test_in_flight_tokens_of_a_pp2_plan():
    # Gemma-3-27B at PP 2 on 0.33 (V2 runner, async): 3 batches of 8,192 tokens may be in flight,
    # which each sliding-window group reserves (VllmConfig.max_in_flight_tokens).
    plan = api.plan("gemma-3-27b", pp=2, **MEM)
    assert plan.max_num_batched_tokens == 8192
    assert plan.engine.max_in_flight_tokens(plan.max_num_batched_tokens) == 3 * 8192
