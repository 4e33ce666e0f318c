"""What each vLLM release's KV cache planner does differently, as data.

One ``Behaviour`` row per range of releases; the planner reads these fields
and never branches on a version number itself.  The ranges come from reading
the planner (``vllm/v1/core/kv_cache_utils.py``, from 0.33
``kv_cache_planning.py``) in every released wheel from 0.10.2 to 0.33.0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class Behaviour:
    """The planner semantics of one range of releases.

    sizing: ``per_worker`` (<= 0.10: each worker groups and sizes its own
        layers, a uniform model divides by all its layers), ``two_branch``
        (0.11 - 0.28: uniform-type branch or shared-pool branch), ``unified``
        (0.29+: one bytes-per-block formula).
    uniform_type: whether ``UniformTypeKVCacheSpecs`` exists.
    project_uniform_type: whether a PP stage's uniform-type group keeps only
        its own layers (0.17+) or the whole model's spec (0.11 - 0.16).
    check: where the max_model_len check runs: ``worker_specs`` (each worker,
        on its raw specs), ``global_min`` (once, whole-model groups against the
        smallest worker memory), ``worker_groups`` (each worker, its projected
        groups).
    shrink_tensors: whether tensors shrink to the cross-worker minimum.
    override_memory: whether ``num_gpu_blocks_override`` replaces the memory
        the check sees (override x bytes per block).
    reserve_null_block: whether the check subtracts one block for the null block.
    auto_fit: whether ``max_model_len = -1`` is fitted to memory.
    tokens: ``blocks`` (num_blocks // groups x min block size x CP) or
        ``concurrency`` (int(concurrency x max_model_len)).
    concurrency: ``first_group`` (<= 0.26) or ``sum_groups`` (0.27+).
    cp_tokens: CP factor in the token report: ``none``, ``dcp``, ``pcp_dcp``.
    log_style: ``two_lines`` or ``one_line`` capacity report.
    gpu_memory_utilization: the default fraction.
    """

    sizing: str
    uniform_type: bool
    project_uniform_type: bool
    check: str
    shrink_tensors: bool
    override_memory: bool
    reserve_null_block: bool
    auto_fit: bool
    tokens: str
    concurrency: str
    cp_tokens: str
    log_style: str
    gpu_memory_utilization: float
    legacy_mamba: bool
    gib_format: str  # "round2" (str(round(x, 2))) or "fixed2" ("%.2f")


_V0_10 = Behaviour(
    sizing="per_worker",
    uniform_type=False,
    project_uniform_type=False,
    check="worker_specs",
    shrink_tensors=False,
    override_memory=False,
    reserve_null_block=False,
    auto_fit=False,
    tokens="blocks",
    concurrency="first_group",
    cp_tokens="none",
    log_style="two_lines",
    gpu_memory_utilization=0.9,
    legacy_mamba=True,
    gib_format="fixed2",
)

# (first release of the range, behaviour); each row applies until the next.
_TABLE: tuple[tuple[str, Behaviour], ...] = (
    ("0.10.0", _V0_10),
    (
        "0.11.0",
        replace(
            _V0_10,
            sizing="two_branch",
            uniform_type=True,
            cp_tokens="dcp",
            legacy_mamba=False,
            gib_format="round2",
        ),
    ),
    ("0.11.1", replace(_V0_10, sizing="two_branch", uniform_type=True, shrink_tensors=True, cp_tokens="dcp", legacy_mamba=False, gib_format="round2")),
    ("0.12.0", replace(_V0_10, sizing="two_branch", uniform_type=True, shrink_tensors=True, cp_tokens="pcp_dcp", legacy_mamba=False, gib_format="round2")),
    ("0.14.0", replace(_V0_10, sizing="two_branch", uniform_type=True, shrink_tensors=True, cp_tokens="pcp_dcp", legacy_mamba=False, gib_format="round2", check="global_min", auto_fit=True)),
    ("0.17.0", replace(_V0_10, sizing="two_branch", uniform_type=True, shrink_tensors=True, cp_tokens="pcp_dcp", legacy_mamba=False, gib_format="round2", check="worker_groups", auto_fit=True, project_uniform_type=True)),
    ("0.20.0", replace(_V0_10, sizing="two_branch", uniform_type=True, shrink_tensors=True, cp_tokens="pcp_dcp", legacy_mamba=False, gib_format="round2", check="worker_groups", auto_fit=True, project_uniform_type=True, gpu_memory_utilization=0.92)),
    ("0.20.1", replace(_V0_10, sizing="two_branch", uniform_type=True, shrink_tensors=True, cp_tokens="pcp_dcp", legacy_mamba=False, gib_format="round2", check="worker_groups", auto_fit=True, project_uniform_type=True, gpu_memory_utilization=0.92, override_memory=True, tokens="concurrency")),
    ("0.27.0", replace(_V0_10, sizing="two_branch", uniform_type=True, shrink_tensors=True, cp_tokens="pcp_dcp", legacy_mamba=False, gib_format="round2", check="worker_groups", auto_fit=True, project_uniform_type=True, gpu_memory_utilization=0.92, override_memory=True, tokens="concurrency", concurrency="sum_groups")),
    ("0.29.0", replace(_V0_10, sizing="unified", uniform_type=True, shrink_tensors=True, cp_tokens="pcp_dcp", legacy_mamba=False, gib_format="round2", check="worker_groups", auto_fit=True, project_uniform_type=True, gpu_memory_utilization=0.92, override_memory=True, tokens="concurrency", concurrency="sum_groups", reserve_null_block=True, log_style="one_line")),
)  # fmt: skip


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


@dataclass(frozen=True)
class Release:
    """A resolved vLLM release and its planner behaviour."""

    version: str
    behaviour: Behaviour

    @property
    def key(self) -> Version:
        """The version as a comparable tuple."""
        return parse_version(self.version)


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
    behaviour = _TABLE[0][1]
    for first, row in _TABLE:
        if parse_version(first) <= key:
            behaviour = row
    return Release(version=version, behaviour=behaviour)
