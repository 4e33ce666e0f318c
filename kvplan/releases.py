"""What each vLLM release's KV cache planner does differently, as data.

One ``Behaviour`` row per range of releases; the planner reads these fields
and never branches on a version number itself.  The ranges come from reading
the planner (``vllm/v1/core/kv_cache_utils.py``, from 0.33
``kv_cache_planning.py``) in every released wheel from 0.10.2 to 0.33.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvplan.errors import InputError

Version = tuple[int, int, int]

# Every release kvplan reproduces, oldest first (PyPI's vllm release list).
KNOWN_RELEASES: tuple[str, ...] = (
    "0.10.0", "0.10.1", "0.10.1.1", "0.10.2",
    "0.11.0", "0.11.1", "0.11.2", "0.12.0", "0.13.0",
    "0.14.0", "0.14.1", "0.15.0", "0.15.1", "0.16.0",
    "0.17.0", "0.17.1", "0.18.0", "0.18.1", "0.19.0", "0.19.1",
    "0.20.0", "0.20.1", "0.20.2", "0.21.0", "0.22.0", "0.22.1", "0.23.0",
    "0.24.0", "0.25.0", "0.25.1", "0.26.0", "0.27.0", "0.27.1", "0.28.0",
    "0.29.0", "0.30.0", "0.31.0", "0.32.0", "0.33.0",
)  # fmt: skip
NEWEST = KNOWN_RELEASES[-1]


@dataclass(frozen=True, eq=False)
class Behaviour:
    """The planner semantics of one vLLM release (see ``_CHANGES`` for the sources).

    sizing: ``per_worker`` (<= 0.10: each worker sizes its own layers),
        ``two_branch`` (0.11 - 0.28: uniform-type or shared-pool branch),
        ``unified`` (0.29+: one bytes-per-block formula).
    uniform_type: ``UniformTypeKVCacheSpecs`` exists (0.11+).
    project_uniform_type: a PP stage's uniform-type group keeps only its own
        layers (0.17+) instead of the whole model's spec.
    check: ``worker_specs`` (each worker, raw specs), ``global_min`` (once,
        whole-model groups vs the smallest memory), ``worker_groups``.
    needed_first_group: the padded need counts only the first group (0.14 - 0.18).
    group_size_rule: ``min``, ``1.25`` or ``1.5``: when the largest bucket is
        under that multiple of the smallest, it sets the group size.
    contiguous_groups: buckets cut into contiguous runs (0.10) instead of b[i::n].
    unify_pages: differing pages are unified by growing block sizes (0.12+).
    page_padding: what unification may pad instead: ``none``, ``mamba``
        (0.26+) or ``mamba_attention`` (0.29+: also non-MLA attention); the
        refusal text changed at 0.24 (``unify_error``: ``v0_12``, ``v0_24``, ``v0_29``).
    shrink_tensors: tensors shrink to the cross-worker minimum (0.11.1+).
    override_memory: num_gpu_blocks_override replaces the checked memory (0.20.1+).
    reserve_null_block: the check subtracts one block (0.29+).
    auto_fit: max_model_len -1 is fitted (0.14+).
    report_before_min: the capacity log uses a worker's count before the min (<= 0.11.0).
    tokens: ``v0_10``, ``blocks`` or ``concurrency`` (0.20.1+).
    concurrency: ``first_page`` (<= 0.26) or ``sum_groups`` (0.27+).
    cp_tokens: CP factor in the ``blocks`` token figure: ``dcp`` or ``pcp_dcp``.
    log_style: ``two_lines`` or ``one_line`` (0.28+).
    async_in_flight: sliding/chunked needs count 2 x max_num_batched_tokens
        in flight (async scheduling, 0.26+).
    mamba_usage: ``page`` (<= 0.11.0), ``blocks`` (0.11.1 - 0.14), ``mode`` (0.15+).
    hybrid_prefix_caching: prefix caching on for hybrid models, so Mamba runs
        in ``align`` mode (0.26+).
    mla_block_size: the MLA backend's block size on Hopper with a 16-bit cache.
    mla_block_size_blackwell: the default MLA backend's block size on
        Blackwell (CUTLASS MLA 128 up to 0.17, FlashInfer MLA 32 from 0.18);
        ``..._nope128`` for a model with a 128-wide nope head (FlashInfer MLA
        takes it from 0.15, with 64-token blocks, until 0.18).
    error_style: which wording of the max_model_len error.
    gpu_memory_utilization: the default fraction.
    global_window_all_sliding: the model-wide ``sliding_window`` is kept only
        when every ``layer_types`` entry slides (0.33+); before, whenever the
        types do not mix.
    cohere2_window_plus_one: Cohere2's sliding layers see ``window + 1``
        tokens, and its head size comes from ``head_dim`` (0.29+).
    nemotron_h_ssm_dtype: the SSM state dtype Nemotron-H's config defaults to
        when it names none (None: the model dtype; float16 from 0.13, float32
        from 0.20).
    cuda_graphs_in_budget: the CUDA graph memory estimate is subtracted from
        the KV cache budget (0.20+).
    batch_tier_160gib: GPUs of 160 GiB and more get the largest batch
        defaults (0.28+).
    wrapper_causal_lm_fallback: a wrapper whose text config names no
        architectures builds transformers' causal-LM class for its model_type
        (0.20+, ``VllmConfig.with_hf_config``); before, vLLM fails on it.
    """

    sizing: str = "per_worker"
    uniform_type: bool = False
    project_uniform_type: bool = False
    check: str = "worker_specs"
    needed_first_group: bool = False
    group_size_rule: str = "min"
    contiguous_groups: bool = True
    unify_pages: bool = False
    page_padding: str = "none"
    unify_error: str = "v0_12"
    shrink_tensors: bool = False
    override_memory: bool = False
    reserve_null_block: bool = False
    auto_fit: bool = False
    report_before_min: bool = True
    tokens: str = "v0_10"
    concurrency: str = "first_page"
    cp_tokens: str = "dcp"
    log_style: str = "two_lines"
    async_in_flight: bool = False
    mamba_usage: str = "page"
    hybrid_prefix_caching: bool = False
    mla_block_size: int = 64
    mla_block_size_blackwell: int = 128
    mla_block_size_blackwell_nope128: int = 128
    error_style: str = "v0_10"
    gpu_memory_utilization: float = 0.9
    global_window_all_sliding: bool = False
    cohere2_window_plus_one: bool = False
    nemotron_h_ssm_dtype: str | None = None
    cuda_graphs_in_budget: bool = False
    batch_tier_160gib: bool = False
    wrapper_causal_lm_fallback: bool = False


# What changed in each release, read from its planner (kv_cache_utils.py /
# kv_cache_planning.py), kv_cache_interface.py and config code.  Each row
# applies from that release on, on top of the rows before it.
_CHANGES: tuple[tuple[str, dict[str, object]], ...] = (
    ("0.10.0", {}),
    (
        "0.11.0",
        {"sizing": "two_branch", "uniform_type": True, "contiguous_groups": False, "tokens": "blocks"},
    ),
    ("0.11.1", {"shrink_tensors": True, "report_before_min": False, "mamba_usage": "blocks"}),
    ("0.12.0", {"cp_tokens": "pcp_dcp", "unify_pages": True, "group_size_rule": "1.25"}),
    ("0.13.0", {"error_style": "v0_13", "nemotron_h_ssm_dtype": "float16"}),
    ("0.14.0", {"check": "global_min", "needed_first_group": True, "auto_fit": True, "error_style": "v0_14"}),
    ("0.15.0", {"mamba_usage": "mode", "mla_block_size_blackwell_nope128": 64}),
    ("0.17.0", {"check": "worker_groups", "project_uniform_type": True}),
    (
        "0.18.0",
        {
            "group_size_rule": "1.5",
            "mla_block_size": 16,
            "mla_block_size_blackwell": 32,
            "mla_block_size_blackwell_nope128": 32,
        },
    ),
    ("0.19.0", {"needed_first_group": False}),
    (
        "0.20.0",
        {"gpu_memory_utilization": 0.92, "nemotron_h_ssm_dtype": "float32", "cuda_graphs_in_budget": True},
    ),
    ("0.20.0", {"wrapper_causal_lm_fallback": True}),
    ("0.20.1", {"override_memory": True, "tokens": "concurrency"}),
    ("0.23.0", {"error_style": "v0_23"}),
    ("0.24.0", {"unify_error": "v0_24"}),
    ("0.26.0", {"async_in_flight": True, "hybrid_prefix_caching": True, "page_padding": "mamba"}),
    ("0.27.0", {"concurrency": "sum_groups"}),
    ("0.28.0", {"log_style": "one_line", "batch_tier_160gib": True}),
    (
        "0.29.0",
        {
            "sizing": "unified",
            "reserve_null_block": True,
            "page_padding": "mamba_attention",
            "unify_error": "v0_29",
            "cohere2_window_plus_one": True,
        },
    ),
    ("0.33.0", {"global_window_all_sliding": True}),
)


def parse_version(text: str) -> Version:
    """``0.19`` / ``0.19.1`` / ``v0.19.1`` to a (major, minor, patch) tuple."""
    parts = text.strip().lstrip("v").split(".")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if not 2 <= len(nums) <= 4:
        raise InputError(
            "not a vLLM version",
            field="vllm_version",
            value=text,
            hint="write X.Y or X.Y.Z, e.g. 0.19 or 0.19.1",
        )
    nums += [0] * (3 - len(nums))
    return nums[0], nums[1], nums[2]


@dataclass(frozen=True, eq=False)
class Release:
    """A resolved vLLM release and its planner behaviour."""

    version: str
    behaviour: Behaviour

    @property
    def key(self) -> Version:
        """The version as a comparable tuple."""
        return parse_version(self.version)

    def serves(self, since: str | None, until: str | None = None) -> bool:
        """Whether this release has a thing vLLM added in ``since`` and removed in ``until``
        (None: always had it / never removed it)."""
        if since is not None and self.key < parse_version(since):
            return False
        return until is None or self.key < parse_version(until)


def resolve_release(text: str | None) -> Release:
    """The release a ``--vllm-version`` names; ``X.Y`` means the newest ``X.Y.*``.

    Raises ``InputError`` for versions outside 0.10.0 - the newest known.
    """
    if text is None:
        text = NEWEST
    text = str(text)
    wanted = parse_version(text)
    exact = len(text.strip().lstrip("v").split(".")) >= 3
    candidates = [
        r
        for r in KNOWN_RELEASES
        if (parse_version(r) == wanted if exact else parse_version(r)[:2] == wanted[:2])
    ]
    if not candidates:
        raise InputError(
            f"vLLM {text} is not a release kvplan reproduces",
            field="vllm_version",
            value=text,
            hint=f"releases {KNOWN_RELEASES[0]} to {NEWEST}",
        )
    version = candidates[-1]
    key = parse_version(version)
    changes: dict[str, object] = {}
    for first, row in _CHANGES:
        if parse_version(first) <= key:
            changes.update(row)
    return Release(version=version, behaviour=Behaviour(**changes))  # type: ignore[arg-type]


def release_for_log(version: str | None) -> tuple[str | None, str | None]:
    """(the release to plan a logged version with, a note when it is not that release).

    Releases before the oldest known are planned with its semantics, newer ones
    with the newest's; development builds (``0.11.1rc2.dev..``) as their X.Y.Z;
    an unknown patch as the newest X.Y kvplan knows.
    """
    import re

    if version is None:
        return None, f"the log does not print the vLLM release; planned with {NEWEST} (give --vllm-version)"
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not m:
        return None, f"cannot read the vLLM release '{version}'; planned with {NEWEST}"
    key = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    oldest = KNOWN_RELEASES[0]
    if key < parse_version(oldest):
        return oldest, f"vLLM {version} is older than {oldest}; planned with {oldest} semantics"
    if key > parse_version(NEWEST):
        return NEWEST, f"vLLM {version} is newer than {NEWEST}; planned with {NEWEST} semantics"
    exact = f"{key[0]}.{key[1]}.{key[2]}"
    if exact in KNOWN_RELEASES:
        return exact, None if exact == version else f"vLLM {version} planned as {exact}"
    return (
        f"{key[0]}.{key[1]}",
        f"vLLM {version} planned as the newest {key[0]}.{key[1]} release kvplan knows",
    )
