"""The runtime terms of vLLM's KV cache budget, release by release and runner by runner.

vLLM sizes the KV cache after a profile run (``Worker.determine_available_memory``
in vllm/v1/worker/gpu_worker.py): a dummy forward over ``max_num_batched_tokens``
tokens split into ``min(max_num_batched_tokens, max_num_seqs)`` requests, then a
sampler warm-up over one logit row per request.  What the warm-up allocates
depends on the model runner (V1 ``gpu_model_runner.py`` or V2
``gpu/model_runner.py``) and on the top-k/top-p path the release takes; whether a
CUDA graph estimate is subtracted depends on both.  Every function here returns
bytes with the formula that produced them; docs/memory.md has the derivations.
"""

from __future__ import annotations

from typing import Any

from kvplan.inputs.serving import Serving
from kvplan.memory.weights import Estimate
from kvplan.model.layers import ModelDescription
from kvplan.records import record
from kvplan.releases import Release

GiB = 1 << 30

# Fitted on llm-d's H100 measurements (benchmarks/data/llmd_measurements.yaml, the fitted
# set of benchmarks/memory_accuracy.py): the PyTorch-sort warm-up per (request x vocab
# entry), and the hidden states of the scheduled tokens held beside it, per (token x hidden).
SORT_SAMPLER_BYTES = 38.2
HIDDEN_BYTES_PER_TOKEN_UNIT = 2.71
# Derived from the code (docs/memory.md, "Sampler warm-up"): bf16 logits (2) + their fp32
# copy (4) + two fp32 R x V tensors of the fused path (FlashInfer's masked logits and
# probabilities; Triton's probabilities and exponential noise) = 14.
FUSED_SAMPLER_BYTES = 14.0
LOGITS_ONLY_BYTES = 2.0  # V2 runner 0.22 - 0.32: the model-dtype logits, nothing sorted
TRITON_SMS = 132  # SM count assumed for the Triton top-k/top-p buffer (H100's)
# Fitted on llm-d's H100 measurements (TP=1 / TP=2).
NON_TORCH_SINGLE = int(0.13 * GiB)
NON_TORCH_PARALLEL = int(0.55 * GiB)
# The "Estimated CUDA graph memory" vLLM logs is 0.17 - 0.65 GiB for dense models.
CUDA_GRAPH_ESTIMATE = int(0.40 * GiB)
FUSED_MOE_CHUNK = 32768  # tokens per fused-MoE chunk (VLLM_FUSED_MOE_CHUNK_SIZE)


def _int(cfg: dict[str, Any], *keys: str) -> int:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def num_experts(cfg: dict[str, Any]) -> int:
    """Routed experts per MoE layer (0 for a dense model)."""
    return _int(cfg, "num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")


@record(frozen=True, eq=False)
class Runner:
    """The model runner vLLM picks (``V1`` or ``V2``) and why."""

    name: str
    reason: str

    @property
    def v2(self) -> bool:
        """True for the V2 model runner."""
        return self.name == "V2"


def model_runner(model: ModelDescription, serving: Serving, release: Release) -> Runner:
    """The runner ``VllmConfig.use_v2_model_runner`` picks (``kvplan.vllm.engine``)."""
    from kvplan.vllm.engine import resolve

    engine = resolve(model, serving, release)
    return Runner("V2" if engine.v2_model_runner else "V1", engine.why_runner)


@record(frozen=True, eq=False)
class SamplerPath:
    """How the profile run's sampler warm-up allocates: bytes per (request x vocab entry)."""

    name: str
    bytes_per_element: float
    why: str


def sampler_path(
    runner: Runner, release: Release, requests: int, vendor: str, flashinfer: bool | None = None
) -> SamplerPath:
    """The warm-up's top-k/top-p path for ``requests`` dummy requests.

    ``flashinfer``: ``--flashinfer-sampler`` (True / False), None for the release's default.
    """
    b = release.behaviour
    if runner.v2:
        if b.v2_sampler_warmup:
            return SamplerPath(
                "V2 warm-up pass (fp32 pipeline, FlashInfer top-k/top-p)",
                FUSED_SAMPLER_BYTES,
                "0.33 V2 _dummy_sampler_run's second pass with SamplingParams.for_sampler_warmup()",
            )
        return SamplerPath(
            "V2 logits only",
            LOGITS_ONLY_BYTES,
            "the V2 dummy batch has no top-k/top-p: only the model-dtype logits",
        )
    rocm = vendor == "amd"
    path = b.sampler
    if flashinfer and not rocm:
        return SamplerPath("FlashInfer top-k/top-p", FUSED_SAMPLER_BYTES, "--flashinfer-sampler")
    if flashinfer is False and path in ("flashinfer", "flashinfer_if_installed"):
        path = "triton_from_8" if release.serves("0.17.0") else "sort"
    if path == "flashinfer" and not rocm:
        return SamplerPath(
            "FlashInfer top-k/top-p", FUSED_SAMPLER_BYTES, "VLLM_USE_FLASHINFER_SAMPLER on by default"
        )
    if path == "triton_from_8" and requests >= 8 and not rocm:
        return SamplerPath("Triton top-k/top-p", FUSED_SAMPLER_BYTES, "Triton kernel from 8 requests")
    if path == "flashinfer_if_installed":
        return SamplerPath(
            "PyTorch sort",
            SORT_SAMPLER_BYTES,
            "FlashInfer is a pip extra in this release: without it vLLM sorts (about 14 B with it)",
        )
    return SamplerPath("PyTorch sort", SORT_SAMPLER_BYTES, "sort-based top-k/top-p")


def forward_peak_bytes(model: ModelDescription, tp: int, tokens: int, dtype_bytes: int) -> tuple[int, str]:
    """The dummy forward's activation peak over ``tokens`` tokens on one TP rank (bytes).

    At the down projection of an MLP the residual, the normed input, the
    gate/up output (2 x intermediate), the activation (intermediate) and the
    output are alive: ``tokens x (3 x hidden + 3 x intermediate / TP)``
    elements.  A fused-MoE layer holds ``top_k`` rows of (2 x, 1 x)
    intermediate and one of hidden per token instead.
    """
    cfg = model.config
    hidden = _int(cfg, "hidden_size")
    inter = _int(cfg, "intermediate_size", "ffn_dim", "n_inner")
    per_token = 3 * inter // tp
    how = f"3 x intermediate {inter} / TP"
    experts = num_experts(cfg)
    if experts:
        topk = _int(cfg, "num_experts_per_tok", "moe_topk", "top_k") or 1
        moe_inter = _int(cfg, "moe_intermediate_size") or inter
        moe = topk * (3 * moe_inter // tp + hidden)
        if moe > per_token:
            per_token = moe
            how = f"top-k {topk} x (3 x expert intermediate {moe_inter} / TP + hidden)"
            tokens = min(tokens, FUSED_MOE_CHUNK)
    value = tokens * (3 * hidden + per_token) * dtype_bytes
    return value, f"{tokens} tokens x (3 x hidden {hidden} + {how}) x {dtype_bytes} B"


def activation_bytes(
    model: ModelDescription,
    serving: Serving,
    release: Release,
    runner: Runner,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    *,
    last: bool,
    vendor: str = "nvidia",
    dtype_bytes: int = 2,
) -> Estimate:
    """vLLM's profiled activation peak on one rank of a PP stage (bytes).

    The larger of the dummy forward's peak and, on the last stage, the
    sampler warm-up over ``min(max_num_seqs, max_num_batched_tokens)`` rows of
    the vocabulary with the scheduled tokens' hidden states held beside it.
    """
    cfg = model.config
    forward, forward_how = forward_peak_bytes(model, serving.tp, max_num_batched_tokens, dtype_bytes)
    if not last:
        return Estimate(forward, True, f"no sampler on this stage; forward: {forward_how}")
    vocab = _int(cfg, "vocab_size")
    hidden = _int(cfg, "hidden_size")
    reqs = min(max_num_seqs, max_num_batched_tokens)
    path = sampler_path(runner, release, reqs, vendor, serving.flashinfer_sampler)
    sampler = path.bytes_per_element * reqs * vocab
    extra = ""
    if path.name.startswith("Triton"):
        rows = min(1 << (min(reqs, TRITON_SMS) - 1).bit_length(), TRITON_SMS)
        sampler += rows * vocab * 4
        extra = f" + {rows} x vocab x 4 B Triton buffer"
    held = HIDDEN_BYTES_PER_TOKEN_UNIT * max_num_batched_tokens * hidden
    warmup = int(sampler + held)
    warmup_how = (
        f"{path.name}: {path.bytes_per_element:g} B x {reqs} requests x vocab {vocab}{extra} + "
        f"{HIDDEN_BYTES_PER_TOKEN_UNIT} B x {max_num_batched_tokens} tokens x hidden {hidden}"
    )
    if forward > warmup:
        return Estimate(forward, True, f"forward peak {forward_how} (above the sampler's {warmup_how})")
    return Estimate(warmup, True, f"{warmup_how} ({runner.name} runner; {path.why})")


def non_torch_bytes(serving: Serving, release: Release) -> Estimate:
    """Non-torch memory growth from the init snapshot: CUDA context, cuBLAS, NCCL."""
    if serving.tp * serving.pp > 1:
        where = (
            "the snapshot precedes distributed init in this release, so NCCL setup counts too"
            if release.behaviour.snapshot_before_distributed
            else "after distributed init"
        )
        return Estimate(NON_TORCH_PARALLEL, True, f"0.55 GiB measured at TP=2 ({where})")
    return Estimate(NON_TORCH_SINGLE, True, "0.13 GiB measured at TP=1 (CUDA context)")


def cuda_graph_bytes(serving: Serving, release: Release, runner: Runner, vendor: str) -> Estimate:
    """The CUDA graph memory estimate subtracted from the KV cache budget (bytes)."""
    b = release.behaviour
    if serving.enforce_eager:
        return Estimate(0, False, "eager mode: no CUDA graphs")
    if not b.cuda_graphs_in_budget:
        return Estimate(0, False, f"vLLM {release.version} captures graphs after sizing the KV cache")
    if vendor == "amd" and not b.rocm_graph_estimate:
        return Estimate(0, False, f"vLLM {release.version} skips the graph estimate on ROCm")
    if runner.v2 and not b.v2_graph_estimate:
        return Estimate(0, False, f"vLLM {release.version}'s V2 runner reports no graph memory (0)")
    return Estimate(
        CUDA_GRAPH_ESTIMATE,
        True,
        f"0.40 GiB ({runner.name} runner; VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS on by default)",
    )


def requested_bytes(total: int, utilization: float, release: Release) -> tuple[int, str]:
    """``total x gpu_memory_utilization`` as the release rounds it (bytes)."""
    exact = total * utilization
    if release.behaviour.requested_ceil:
        value = int(exact) + (exact > int(exact))
        return value, f"ceil(total x {utilization})"
    return int(exact), f"total x {utilization}"


@record(frozen=True, eq=False)
class BatchDefaults:
    """max_num_batched_tokens / max_num_seqs as vLLM settles them, and how."""

    max_num_batched_tokens: int
    max_num_seqs: int
    source: str


LOW = {"llm": (8192, 256), "serve": (2048, 256)}
HIGH = {"llm": (16384, 1024), "serve": (8192, 1024)}
LARGEST = {"llm": (16384, 1024), "serve": (16384, 1024)}
ENGINE = (2048, 128)  # SchedulerConfig's defaults, for AsyncEngineArgs used directly


def batch_defaults(
    total_bytes: int | None,
    gpu_name: str | None,
    release: Release,
    serving: Serving,
    max_model_len: int,
) -> BatchDefaults:
    """``EngineArgs.get_batch_defaults`` and the caps ``_set_default_args`` applies.

    Tiers by the GPU's memory: 160 GiB and more (0.28+), 70 GiB and more unless
    the name says A100 or the GPU is a GB10, otherwise the small tier; each
    tier per usage context (``serve`` / ``llm``; ``engine`` always 2048 / 128).
    Throughput mode doubles what was defaulted (0.17+).  Then, for defaulted
    values: max_num_batched_tokens <= max_num_seqs x max_model_len (0.11.1+)
    and max_num_seqs <= max_num_batched_tokens.  The user's values win.
    """
    b = release.behaviour
    context = serving.usage_context or "serve"
    name = (gpu_name or "").lower()
    if context == "engine":
        tokens, seqs = ENGINE
        tier = "AsyncEngineArgs (SchedulerConfig defaults)"
    elif total_bytes is None:
        tokens, seqs = LOW[context]
        tier = "no GPU figure: the small tier"
    elif b.batch_tier_160gib and total_bytes >= 160 * GiB:
        tokens, seqs = LARGEST[context]
        tier = ">= 160 GiB"
    elif total_bytes >= 70 * GiB and "a100" not in name and "gb10" not in name:
        tokens, seqs = HIGH[context]
        tier = ">= 70 GiB, not A100/GB10"
    else:
        tokens, seqs = LOW[context]
        why = "A100" if "a100" in name else "GB10" if "gb10" in name else "< 70 GiB"
        tier = f"{why}: the small tier"
    user_t, user_s = serving.max_num_batched_tokens, serving.max_num_seqs
    if serving.performance_mode == "throughput" and b.throughput_doubles:
        tokens, seqs = (tokens if user_t else 2 * tokens), (seqs if user_s else 2 * seqs)
        tier += ", throughput mode x2"
    t = user_t or tokens
    s = user_s or seqs
    if user_t is None and b.batch_caps == "capped" and max_model_len > 0:
        t = min(s * max_model_len, t)
    if user_s is None:
        s = min(s, t)
    given = [n for n, v in (("max_num_batched_tokens", user_t), ("max_num_seqs", user_s)) if v]
    source = f"vLLM {release.version} {context} defaults ({tier})"
    if given:
        source += "; given: " + ", ".join(given)
    return BatchDefaults(t, s, source)
