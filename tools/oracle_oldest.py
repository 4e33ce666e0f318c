"""Was every architecture kvplan derives checked against vLLM's own model code on the
oldest release that serves it?

    python tools/oracle_oldest.py                 what is missing (the default)
    python tools/oracle_oldest.py --all           one line per derived architecture
    python tools/oracle_oldest.py --registries    rewrite tests/coverage/registered.json
    python tools/oracle_oldest.py --run 0.10.0    run the missing cases of that release

The first release serving a name is the first of ``kvplan.releases.KNOWN_RELEASES``
whose registry (``vllm/model_executor/models/registry.py``: the text, multimodal and
Transformers-backend tables) lists it and whose ``since``/``until`` in
``kvplan.model.registry`` let kvplan derive it.  ``--registries`` reads every release's
registry (``/work/vllm-src/<version>/`` where unpacked, else the wheel in
``/work/vllm-wheels/``) into ``tests/coverage/registered.json``: per name, the
ranges of releases that register it; the report and the tests read that file, and
``--registries`` prints every ``since``/``until`` of kvplan's registry it contradicts.

A name's cases are the oracle cases (``tests/oracle/cases/<family>.json``, the
families in ``FAMILIES``) whose config's ``architectures`` names it.  It is checked on
a release when that release's fixture (``tests/oracle/fixtures/<family>/
vllm-<version>.json``) has a TP 1 case and a TP > 1 case of it that vLLM built.  The
release it must be checked on is its first serving one, unless ``SUBSTITUTES`` (the
release's oracle environment cannot be built) or ``MOVED`` (the harness cannot run
its cases there) name a later one, with the reason.

``--run X.Y.Z`` runs, in the release's oracle environment (``/work/oracle-venvs/
X.Y.Z``, made with ``tools/vllm_oracle/venvs.py``), every case of the architectures
checked on that release that its fixtures lack, under ``flock /work/oracle.lock``,
and writes vLLM's answers into ``tests/oracle/fixtures/<family>/vllm-X.Y.Z.json`` in
the family's fixture format.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.coverage import parse_registry  # noqa: E402

ORACLE = ROOT / "tests" / "oracle"
REGISTERED = ROOT / "tests" / "coverage" / "registered.json"
VLLM_SRC = Path("/work/vllm-src")
WHEELS = Path("/work/vllm-wheels")
VENVS = Path("/work/oracle-venvs")
LOCK = "/work/oracle.lock"
META_BUILD = ROOT / "kvplan" / "workflows" / "vllm_meta.py"
NEWEST = "0.33.0"
# The registry tables whose names vLLM serves as generative models.
TABLES = ("text", "multimodal", "encoder_decoder", "transformers_backend")

# The families whose tests compare kvplan's layers with vLLM's, and how each one's
# fixtures are written: ``layers`` (tools/oracle_family.py), ``mla`` (tools/
# oracle_mla_spec.py, with its drafter extension), ``planner`` (the oracle's compact
# case with the planner's groups and blocks), ``slim`` (``planner`` keeping only what
# tests/test_family_full.py reads).  The speculative-decoding cases (``spec``) and
# the weight cases check other things.
FAMILIES = {
    # the preset cases (tests/oracle/cases.json, tests/oracle/fixtures/vllm-<version>.json,
    # tools/vllm_oracle/run.py, tests/test_oracle.py)
    "oracle": "run",
    "full": "slim",
    "sliding": "layers",
    "multimodal": "layers",
    "mla": "mla",
    "recurrent": "planner",
    "sharing": "planner",
    "encdec": "planner",
    # (their own tests run every case on the releases they list, the first serving one included)
    "multimodal2": "layers",
    "newer": "planner",
}

# Releases whose oracle environment cannot be built: (release used instead, why).
SUBSTITUTES: dict[str, tuple[str, str]] = {}

# Architectures whose cases the harness cannot run on their first release (or, where
# said, that vLLM itself refuses there, as kvplan does): name -> (release checked
# instead, why).
_NO_CONFIG_CLASS = (
    "{t}'s config class is neither in transformers {tf} (the oracle environment's) nor among "
    'vLLM {v}\'s own config classes (vLLM: "Transformers does not recognize this architecture")'
)
# where the published checkpoint carries the config class itself
_REMOTE_CODE = "; the published checkpoint brings its own (auto_map), which the case's folder does not hold"
# where a later transformers has it
_LATER_TRANSFORMERS = "; the release accepts a later transformers that has it"
MOVED: dict[str, tuple[str, str]] = {
    **{
        name: ("0.10.1", _NO_CONFIG_CLASS.format(t=model_type, tf="4.53.3", v="0.10.0") + _LATER_TRANSFORMERS)
        for name, model_type in (
            ("DeepseekV2ForCausalLM", "deepseek_v2"),
            ("Ernie4_5_MoeForCausalLM", "ernie4_5_moe"),
            ("Glm4MoeForCausalLM", "glm4_moe"),
        )
    },
    **{
        name: (
            "0.10.2",
            _NO_CONFIG_CLASS.format(t=model_type, tf="4.53.3 and 4.55.4", v="0.10.0 and 0.10.1")
            + _LATER_TRANSFORMERS,
        )
        for name, model_type in (
            ("HunYuanDenseV1ForCausalLM", "hunyuan_v1_dense"),
            ("HunYuanMoEV1ForCausalLM", "hunyuan_v1_moe"),
        )
    },
    "MiniCPM3ForCausalLM": (
        "0.32.0",
        _NO_CONFIG_CLASS.format(t="minicpm3", tf="4.53.3 to 5.10.4", v="0.10.0 to 0.28.0")
        + _REMOTE_CODE
        + " (the fixtures of 0.10.0, 0.10.2, 0.11.0, 0.15.1, 0.19.1, 0.23.0 and 0.28.0 hold that "
        "refusal); the first oracle environment whose transformers has it is 0.32.0's (5.19.0)",
    ),
    "DeepseekV32ForCausalLM": (
        "0.19.1",
        "its cache is always fp8_ds_mla, and vLLM 0.11.0's KV-cache scale processing "
        "(vllm/model_executor/layers/quantization/kv_cache.py, process_weights_after_loading) "
        "compares the loaded scales' values, which a meta-device build has not (AssertionError); "
        "0.11.1 to 0.19.0 not run",
    ),
    "MiniMaxM2ForCausalLM": (
        "0.28.0",
        _NO_CONFIG_CLASS.format(t="minimax_m2", tf="4.57.6", v="0.11.1 to 0.19.1")
        + _REMOTE_CODE
        + "; 0.23.0's environment fails to build the TP 2 case, 0.20 to 0.22 and 0.24 to 0.27 not run",
    ),
    **{
        name: (
            "0.33.0",
            _NO_CONFIG_CLASS.format(t=model_type, tf=tf, v=first)
            + f"; the first oracle environment run after {first} whose transformers has it is 0.33.0's",
        )
        for name, model_type, tf, first in (
            ("AXK1ForCausalLM", "axk1", "4.57.6", "0.17.0"),
            ("Exaone4_5_ForConditionalGeneration", "exaone4_5", "5.6.2", "0.20.0"),
            ("GlmAsrForConditionalGeneration", "glmasr", "4.57.6", "0.14.0"),
            ("LightOnOCRForConditionalGeneration", "lighton_ocr", "4.57.6", "0.11.1"),
            ("MiMoV2FlashForCausalLM", "mimo_v2_flash", "4.57.6", "0.14.0"),
            ("Glm4MoeLiteForCausalLM", "glm4_moe_lite", "4.57.6", "0.15.0"),
            ("GlmMoeDsaForCausalLM", "glm_moe_dsa", "4.57.6", "0.16.0"),
            ("Gemma4UnifiedForConditionalGeneration", "gemma4_unified", "5.6.2", "0.23.0"),
            ("Gemma4ForCausalLM", "gemma4_text", "4.57.6", "0.19.0"),
            ("AudioFlamingo3ForConditionalGeneration", "audioflamingo3", "4.57.6", "0.13.0"),
            ("Gemma4ForConditionalGeneration", "gemma4", "4.57.6", "0.19.0"),
            ("GraniteSpeechPlusForConditionalGeneration", "granite_speech_plus", "5.6.2", "0.23.0"),
        )
    },
    "Glm4vMoeForConditionalGeneration": (
        "0.10.2",
        _NO_CONFIG_CLASS.format(t="glm4v_moe", tf="4.55.4", v="0.10.1") + _LATER_TRANSFORMERS,
    ),
    **{
        name: (
            used,
            _NO_CONFIG_CLASS.format(t=model_type, tf=tf, v=first)
            + f"; the first oracle environment run after {first} whose transformers has it is {used}'s",
        )
        for name, model_type, tf, first, used in (
            ("PaddleOCRVLForConditionalGeneration", "paddleocr_vl", "4.57.6", "0.11.1", "0.20.0"),
            ("GlmOcrForConditionalGeneration", "glm_ocr", "4.57.6", "0.16.0", "0.20.0"),
            ("CohereCompassForConditionalGeneration", "cohere_compass", "5.10.4", "0.30.0", "0.32.0"),
        )
    },
    "BloomForCausalLM": (
        "0.15.1",
        "the oracle's CPU environment has no vllm_flash_attn, so vLLM 0.10.2 to 0.11.0 pick "
        "FlexAttention, which refuses ALiBi (a GPU picks FlashAttention); 0.15.1 is the next "
        "release run",
    ),
    "WhisperForConditionalGeneration": (
        "0.19.1",
        "vLLM 0.10.2 loads Whisper's processor (feature extractor and tokenizer files) while it "
        "builds the config, and the case's folder holds only config.json; 0.11.0 to 0.15.1 not run",
    ),
    "Gemma3nForCausalLM": (
        "0.11.1",
        "vLLM 0.10.1 to 0.11.0 refuse the text-only model themselves (gemma3n.py names its "
        "KV-sharing targets under the multimodal wrapper's prefix; kvplan gives the same "
        "refusal, Behaviour.gemma3n_text_targets_wrapper); 0.11.1 is the first release that builds it",
    ),
    "HyperCLOVAXForCausalLM": (
        "0.23.0",
        _NO_CONFIG_CLASS.format(t="hyperclovax", tf="4.57.6", v="0.18.0 and 0.19.1")
        + "; 0.23.0's (transformers 5.6.2) is the next oracle environment run",
    ),
    "Jais2ForCausalLM": (
        "0.23.0",
        _NO_CONFIG_CLASS.format(t="jais2", tf="4.57.6", v="0.13.0 to 0.19.1")
        + "; 0.23.0's (transformers 5.6.2) is the next oracle environment run",
    ),
    "OPTForCausalLM": (
        "0.10.2",
        "its config (made from transformers 5's OPT class) spells its dtype `dtype`, which "
        "transformers 4.53.3 (0.10.0's oracle environment) does not read, so vLLM 0.10.0 there "
        "sees no dtype and runs bfloat16; 4.56.2 (0.10.2's) reads it",
    ),
    "CwmForCausalLM": (
        "0.23.0",
        _NO_CONFIG_CLASS.format(t="cwm", tf="4.57.1 and 4.57.6", v="0.11.0 to 0.19.1")
        + "; the first oracle environment whose transformers has it is 0.23.0's (5.6.2)",
    ),
}

# Derived names without a TP 1 and a TP > 1 case that vLLM built on their oldest or
# newest serving release: name -> why.  Their cases are left out of the family tests'
# oldest-release runs (``oldest_runs``) until they are run.
UNCHECKED: dict[str, str] = {
    "AfmoeForCausalLM": "its case's config omits layer_types, which vLLM 0.11.1's own AfmoeConfig leaves None, so afmoe.py fails subscripting it (a config writing layer_types out would build); kvplan fills the config class's pattern, as transformers 5's class does",
    "ApertusForCausalLM": "vLLM's Apertus build reads a tensor's value while it creates the model (RuntimeError: Cannot copy out of meta tensor), which the meta-device build cannot give (0.10.2, 0.11.0, 0.19.1 and 0.33.0 alike)",
    "BeeForConditionalGeneration": "vLLM 0.11.1 fails on the case's generated config while building the model ('NoneType' object is not iterable); not analysed further (0.33.0 builds it)",
    "DeepseekVLV2ForCausalLM": "vLLM 0.10.0's DeepSeek-VL2 vision encoder needs timm, which the oracle environment does not install",
    "DoryForCausalLM": 'vLLM 0.33.0 (its only serving release) refuses every tensor_parallel_size above 1 (vllm/model_executor/models/dory.py:296, "Dory currently supports tensor_parallel_size=1 only"), and kvplan gives the same refusal; its TP 1 cases are built and compared, no TP > 1 case can be',
    "DotsOCRForCausalLM": "the dots_ocr model type needs the checkpoint's remote configuration code, which the case's folder lacks (refused on every release run)",
    "ExaoneMoeForCausalLM": "vLLM 0.27.0 fails on the case's generated config while building the model ('ExaoneMoeConfig' object has no attribute 'sliding_windows'); not analysed further (0.33.0 builds it)",
    "FireRedASR2ForConditionalGeneration": "no oracle case: no config under tests/oracle/configs names it",
    "FlintForCausalLM": "vLLM 0.33.0's Flint attention imports flashinfer, which the oracle environment (CPU) does not install",
    "FunASRForConditionalGeneration": "transformers 4.57.6 (0.17.0's oracle environment) has no fun_asr_nano config class, and vLLM's FunASR module imports torchaudio, which the oracle environment does not install (no release run builds it)",
    "Granite4VisionForConditionalGeneration": "vLLM 0.20.0 fails on the case's generated config while building the model (object of type 'NoneType' has no len()); not analysed further (0.33.0 builds it)",
    "InternS1ProForConditionalGeneration": 'vLLM\'s InternS1-Pro needs FoPE rope parameters, which only its own published config has ("should use FOPE" on every release run)',
    "InternVLChatModel": "vLLM's InternVL processor needs a tokenizer while the config is built; the oracle runs without one (skip_tokenizer_init)",
    "IsaacForConditionalGeneration": "transformers 4.57.6 (0.14.0's oracle environment) has no isaac config class, and vLLM's Isaac model reads its vision token from the tokenizer, which the oracle runs without",
    "KananaVForConditionalGeneration": "no oracle case: no config under tests/oracle/configs names it",
    "Llama_Nemotron_Nano_VL": "vLLM builds its vision model through AutoModel from the checkpoint's remote code, which the case's folder lacks (ModelConfig assertion on 0.10.0)",
    "LlavaOnevision2ForConditionalGeneration": "no oracle case: no config under tests/oracle/configs names it",
    "MiDashengLMModel": "vLLM's MiDashengLM module imports torchaudio, which the oracle environment does not install",
    "MiMoV2OmniForCausalLM": "no oracle case: no config under tests/oracle/configs names it",
    "MoonshotKimiaForCausalLM": "no oracle case: no config under tests/oracle/configs names it",
    "MossAudioModel": "no oracle case: no config under tests/oracle/configs names it",
    "OpenVLAForActionPrediction": "vLLM's OpenVLA vision backbone needs timm, which the oracle environment does not install (no release run builds it)",
    "Ovis": "vLLM 0.10.0's Ovis build recurses without end deep-copying the case's generated config (RecursionError), and the other Ovis config lacks the backbone_config vLLM's visual tokenizer needs",
    "Ovis2_5": "no oracle case: no config under tests/oracle/configs names it",
    "Ovis2_6ForCausalLM": "no oracle case: no config under tests/oracle/configs names it",
    "Ovis2_6_MoeForCausalLM": "no oracle case: no config under tests/oracle/configs names it",
    "Phi4MMForCausalLM": "no oracle case: no config under tests/oracle/configs names it",
    "PixtralForConditionalGeneration": "no oracle case: no config under tests/oracle/configs names it",
    "QianfanOCRForConditionalGeneration": "vLLM 0.21.0 fails on the case's generated config while building the model ('NoneType' object is not subscriptable); not analysed further (0.33.0 builds it)",
    "Qwen3ASRRealtimeGeneration": "vLLM 0.17.0 fails to inspect the model class in the oracle environment (failed to be inspected); not analysed further (0.19.1 builds it)",
    "Qwen3OmniMoeForConditionalGeneration": "its case's vision_config (transformers' class defaults) lacks keys vLLM's Qwen3-Omni vision encoder reads (0.11.1: apply_vit_abs_pos_embed)",
    "VoxtralForConditionalGeneration": "its case's config (transformers' Voxtral class defaults) lacks the audio keys vLLM reads from a Mistral-format params.json; every release run refuses or fails on it (0.10.0: no voxtral config class in transformers 4.53.3)",
}


# ------------------------------------------------------------------ registries


def _releases() -> tuple[str, ...]:
    from kvplan.releases import KNOWN_RELEASES

    return KNOWN_RELEASES


def registry_source(version: str) -> str | None:
    """The text of a release's registry.py (unpacked sources, else the wheel)."""
    path = VLLM_SRC / version / "vllm" / "model_executor" / "models" / "registry.py"
    if path.exists():
        return path.read_text()
    wheels = sorted(glob.glob(str(WHEELS / f"vllm-{version}-*.whl")))
    if not wheels:
        return None
    with zipfile.ZipFile(wheels[0]) as zf:
        return zf.read("vllm/model_executor/models/registry.py").decode()


def read_registries() -> dict[str, Any]:
    """Every release's registered names, as ranges per name."""
    releases = _releases()
    present: dict[str, list[str]] = {}
    missing = []
    for version in releases:
        source = registry_source(version)
        if source is None:
            missing.append(version)
            continue
        groups = parse_registry(source)
        for name in {n for g in TABLES for n in groups[g]}:
            present.setdefault(name, []).append(version)
    if missing:
        raise SystemExit(f"no registry for {', '.join(missing)}: download their wheels to {WHEELS}")
    names: dict[str, list[list[str | None]]] = {}
    for name, versions in sorted(present.items()):
        ranges: list[list[str | None]] = []
        for i, version in enumerate(releases):
            if version not in versions:
                continue
            if ranges and ranges[-1][1] == version:
                ranges[-1][1] = releases[i + 1] if i + 1 < len(releases) else None
            else:
                ranges.append([version, releases[i + 1] if i + 1 < len(releases) else None])
        names[name] = ranges
    return {
        "source": "vllm/model_executor/models/registry.py of every release: "
        + ", ".join(f"_{t.upper()}" for t in ("text_generation_models", "multimodal_models"))
        + " (its encoder-decoder part included), _TRANSFORMERS_SUPPORTED_MODELS",
        "releases": list(releases),
        "ranges": "[first release registering it, first release after that no longer does (null: still does)]",
        "names": names,
    }


def _format_registered(doc: dict[str, Any]) -> str:
    """The snapshot with one name a line."""
    head = {k: v for k, v in doc.items() if k != "names"}
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()] + [' "names": {']
    items = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in doc["names"].items()]
    return "\n".join(lines + [",\n".join(items), " }", "}"]) + "\n"


@cache
def registered() -> dict[str, list[list[str | None]]]:
    return json.loads(REGISTERED.read_text())["names"]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _serves(version: str, since: str | None, until: str | None) -> bool:
    return (since is None or _key(version) >= _key(since)) and (until is None or _key(version) < _key(until))


def served_by_vllm(name: str, version: str) -> bool:
    return any(_serves(version, a, b) for a, b in registered().get(name, []))


def kvplan_range(name: str) -> tuple[str | None, str | None]:
    from kvplan.model.registry import ARCHITECTURES, WRAPPERS

    if name in ARCHITECTURES:
        entry = ARCHITECTURES[name]
        # a name wrappers built before it was registered: served alone from ``registered``
        return entry.registered or entry.since, entry.until
    return WRAPPERS[name].since, WRAPPERS[name].until


# The deriver modules whose models keep recurrent state (Mamba layers).
RECURRENT_MODULES = ("mamba", "recurrent")


def v1_range(name: str) -> tuple[str | None, str | None]:
    """``kvplan_range`` from the first release whose V1 engine builds it by default:
    ``v1_since`` (a V0-only model class before), and for models with recurrent state
    the first release with ``Behaviour.v1_recurrent``."""
    from kvplan.model.registry import ARCHITECTURES, WRAPPERS
    from kvplan.releases import resolve_release

    since, until = kvplan_range(name)
    entry = ARCHITECTURES.get(name) or ARCHITECTURES.get(WRAPPERS[name].backbone or "")
    floors = []
    if entry is not None and entry.v1_since is not None:
        floors.append(entry.v1_since)
    if entry is not None and entry.derive.split(":")[0] in RECURRENT_MODULES:
        floors.append(next(v for v in _releases() if resolve_release(v).behaviour.v1_recurrent))
    for floor in floors:
        if since is None or _key(floor) > _key(since):
            since = floor
    return since, until


def derived_names() -> list[str]:
    from kvplan.model.registry import ARCHITECTURES, WRAPPERS

    return sorted(set(ARCHITECTURES) | set(WRAPPERS))


def serving_releases(name: str) -> list[str]:
    """The releases on which vLLM registers ``name`` and kvplan derives it."""
    since, until = v1_range(name)
    return [v for v in _releases() if served_by_vllm(name, v) and _serves(v, since, until)]


def registry_mismatches() -> list[str]:
    """kvplan's since/until next to the ranges vLLM's registries give."""
    releases = _releases()
    out = []
    for name in derived_names():
        ranges = registered().get(name)
        since, until = kvplan_range(name)
        if not ranges:
            out.append(f"{name}: no release registers it")
            continue
        first = ranges[0][0]
        want_since = None if first == releases[0] else first
        want_until = ranges[-1][1]
        if len(ranges) > 1:
            out.append(f"{name}: registered {ranges} (kvplan: since {since}, until {until})")
        elif (since, until) != (want_since, want_until):
            out.append(
                f"{name}: vLLM since {want_since}, until {want_until}; kvplan since {since}, until {until}"
            )
    return out


# ------------------------------------------------------------------ cases and fixtures


def cases_path(family: str) -> Path:
    return ORACLE / "cases.json" if family == "oracle" else ORACLE / "cases" / f"{family}.json"


def fixture_path(family: str, version: str) -> Path:
    folder = ORACLE / "fixtures" if family == "oracle" else ORACLE / "fixtures" / family
    return folder / f"vllm-{version}.json"


@cache
def family_cases(family: str) -> list[dict[str, Any]]:
    return json.loads(cases_path(family).read_text())["cases"]


@cache
def config_architectures(config: str) -> tuple[str, ...]:
    cfg = json.loads((ORACLE / "configs" / config / "config.json").read_text())
    return tuple(cfg.get("architectures") or ())


def case_architecture(case: dict[str, Any]) -> str | None:
    archs = config_architectures(case["config"])
    return archs[0] if archs else None


@cache
def fixture_results(family: str, version: str) -> dict[str, Any] | None:
    path = fixture_path(family, version)
    if not path.exists():
        return None
    return json.loads(path.read_text())["results"]


def fixture_releases(family: str) -> list[str]:
    folder = fixture_path(family, NEWEST).parent
    return sorted((p.stem.removeprefix("vllm-") for p in folder.glob("vllm-*.json")), key=_key)


def cases_of(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (family, case)
        for family in FAMILIES
        for case in family_cases(family)
        if case_architecture(case) == name
    ]


def first_release(name: str) -> str | None:
    releases = serving_releases(name)
    return releases[0] if releases else None


def check_release(name: str) -> tuple[str | None, str]:
    """The oldest release ``name`` must be checked on, and why it is not the first one."""
    first = first_release(name)
    if name in MOVED:
        return MOVED[name]
    if first in SUBSTITUTES:
        return SUBSTITUTES[first]
    return first, ""


def newest_release(name: str) -> str | None:
    releases = serving_releases(name)
    return releases[-1] if releases else None


BUILT = ("ok", "planner_error")


def checked(name: str, version: str) -> tuple[bool, str]:
    """Whether a TP 1 and a TP > 1 case of ``name`` were built by vLLM ``version``."""
    seen = {"tp1": False, "tpN": False}
    notes = []
    for family, case in cases_of(name):
        results = fixture_results(family, version)
        if results is None:
            continue
        result = results.get(case["id"])
        if result is None:
            continue
        if result.get("status") in BUILT:
            seen["tp1" if case["tp"] == 1 else "tpN"] = True
        else:
            err = result.get("error") or {}
            notes.append(f"{case['id']}: {result.get('status')} {str(err.get('message', ''))[:120]}")
    missing = [k for k, v in seen.items() if not v]
    return not missing, ("no " + " / ".join(missing) + " case built" if missing else "") + (
        ("; " + "; ".join(notes[:2])) if notes else ""
    )


def _failed(family: str, case: dict[str, Any], version: str) -> bool:
    """Whether ``version``'s fixture holds ``case`` and vLLM did not build it."""
    result = (fixture_results(family, version) or {}).get(case["id"])
    return result is not None and result.get("status") not in BUILT


def _built(family: str, case: dict[str, Any], version: str) -> bool:
    """Whether ``version``'s fixture holds ``case`` and vLLM built it."""
    result = (fixture_results(family, version) or {}).get(case["id"])
    return result is not None and result.get("status") in BUILT


def _always_failed(family: str, case: dict[str, Any]) -> bool:
    """Whether vLLM refused ``case`` on every release whose fixture holds it."""
    held = [v for v in fixture_releases(family) if case["id"] in (fixture_results(family, v) or {})]
    return bool(held) and all(_failed(family, case, v) for v in held)


def selected_cases(name: str) -> list[tuple[str, dict[str, Any]]]:
    """The (family, case) pairs ``name`` is checked with on its oldest release: a TP 1
    and a TP > 1 case without pipeline parallelism, of the first config (in the
    families' order) that has both and that this release's fixtures do not show
    refused (nor refused on every release), else the first of each kind."""
    version, _ = check_release(name)
    cases = [(f, c) for f, c in cases_of(name) if c.get("pp", 1) == 1]
    by_config: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for family, case in cases:
        by_config.setdefault((family, case["config"]), []).append((family, case))
    groups = list(by_config.values())
    if version is not None:
        # configs this release built first (a TP 1 and a TP > 1 case of them); those
        # refused on it last, then those refused on every release tried
        groups.sort(
            key=lambda g: (
                not (
                    any(_built(f, c, version) for f, c in g if c["tp"] == 1)
                    and any(_built(f, c, version) for f, c in g if c["tp"] > 1)
                ),
                any(_failed(f, c, version) for f, c in g),
                any(_always_failed(f, c) for f, c in g),
            )
        )
    for group in [*groups, cases]:
        if version is not None:  # within a config, the cases this release built first
            group = sorted(group, key=lambda fc: not _built(fc[0], fc[1], version))
        tp1 = [fc for fc in group if fc[1]["tp"] == 1]
        tpn = [fc for fc in group if fc[1]["tp"] > 1]
        if tp1 and tpn:
            return [tp1[0], tpn[0]]
    return cases[:1]


def oldest_runs(family: str, pending: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """(release, case) for the cases of ``family`` that check an architecture on its
    oldest check release (``selected_cases``): what that release's fixture must hold.
    The names in ``UNCHECKED`` not built there are left out unless ``pending``."""
    out = []
    for name in derived_names():
        version, _ = check_release(name)
        if version is None:
            continue
        if name in UNCHECKED and not pending and not checked(name, version)[0]:
            continue  # (built there but not on the newest release: compared all the same)
        out += [(version, case) for fam, case in selected_cases(name) if fam == family]
    ids = {c["id"]: i for i, c in enumerate(family_cases(family))}
    return sorted(out, key=lambda vc: (_key(vc[0]), ids[vc[1]["id"]]))


def extra_runs(family: str, releases: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """``oldest_runs`` on the releases a family's test does not run every case on."""
    return [(version, case) for version, case in oldest_runs(family) if version not in releases]


def missing_fixtures() -> list[str]:
    """The (family, release, case) runs whose fixture or result is not there."""
    out = []
    for family in FAMILIES:
        for version, case in oldest_runs(family):
            results = fixture_results(family, version)
            if results is None or case["id"] not in results:
                out.append(f"{family} {version} {case['id']}")
    return out


def unchecked() -> dict[str, str]:
    """Derived names not checked on their oldest (or newest) serving release: name -> what is missing."""
    out = {}
    for name in derived_names():
        version, _ = check_release(name)
        newest = newest_release(name)
        for release in dict.fromkeys([version, newest]):
            if release is None:
                continue
            ok, note = checked(name, release)
            if not ok:
                out[name] = f"{release}: {note}"
                break
    return out


@cache
def derived_set() -> frozenset[str]:
    return frozenset(derived_names())


# ------------------------------------------------------------------ the report


def report(show_all: bool) -> int:
    rows = []
    missing_by_release: dict[str, list[str]] = {}
    for name in derived_names():
        first = first_release(name)
        version, why = check_release(name)
        cases = cases_of(name)
        newest = newest_release(name)
        fams = sorted({f for f, _ in cases})
        have = sorted({v for f in fams for v in fixture_releases(f)}, key=_key)
        old_ok, old_note = checked(name, version) if version else (False, "never served")
        new_ok, new_note = checked(name, newest) if newest else (False, "never served")
        rows.append((name, first, version, why, cases, have, old_ok, old_note, newest, new_ok, new_note))
        if not old_ok and version:
            missing_by_release.setdefault(version, []).append(name)
    for name, first, version, why, cases, have, old_ok, old_note, newest, new_ok, new_note in rows:
        if show_all or not old_ok or not new_ok:
            ids = ", ".join(c["id"] for _, c in cases) or "no case"
            line = f"{name}: first {first}"
            if version != first:
                line += f", checked on {version} ({why})"
            line += f"; cases: {ids}; fixtures: {', '.join(have) or 'none'}"
            if not old_ok:
                line += f"; MISSING on {version}: {old_note}"
            if not new_ok:
                line += f"; MISSING on {newest}: {new_note}"
            print(line)
    print()
    total = len(rows)
    done = sum(1 for r in rows if r[6] and r[9])
    print(f"{done} of {total} derived architectures checked on their oldest and newest serving release")
    for version in sorted(missing_by_release, key=_key):
        print(
            f"  missing on {version} ({len(missing_by_release[version])}): {', '.join(missing_by_release[version])}"
        )
    if SUBSTITUTES or MOVED:
        print("\nchecked on a later release:")
        for release, (used, why) in SUBSTITUTES.items():
            print(f"  {release} -> {used}: {why}")
        for name, (used, why) in MOVED.items():
            print(f"  {name} -> {used}: {why}")
    return 0


# ------------------------------------------------------------------ running the oracle


def _todo(version: str) -> dict[str, list[dict[str, Any]]]:
    """Per family, the cases ``version``'s fixture must hold and does not."""
    out: dict[str, list[dict[str, Any]]] = {}
    for family in FAMILIES:
        results = fixture_results(family, version) or {}
        for release, case in oldest_runs(family, pending=True):
            if release == version and case["id"] not in results and case not in out.get(family, []):
                out.setdefault(family, []).append(case)
    return out


def _meta_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for case in cases:
        m = {k: v for k, v in case.items() if k not in ("config", "skip_releases", "releases")}
        m["config_dir"] = str(ORACLE / "configs" / case["config"])
        out.append(m)
    return out


_DROP = ("log", "standins_used", "meta_value_reads", "warnings", "seconds", "peak_rss_mib")
_DROP_STAGE = ("kv_cache_layouts", "bytes", "seconds_build", "runner", "attention_backend_layers")
_SLIM_CONFIG = (
    "model_config.max_model_len",
    "scheduler_config.max_num_batched_tokens",
    "scheduler_config.max_num_seqs",
    "cache_config.block_size",
    "cache_config.cache_dtype",
    "parallel_config.tensor_parallel_size",
    "parallel_config.pipeline_parallel_size",
)


def _planner_case(case: dict[str, Any], raw: dict[str, Any], table: Any, slim: bool) -> dict[str, Any]:
    import run as oracle_run  # tools/vllm_oracle/run.py

    res = oracle_run.compact_case(case, raw, table)
    for k in _DROP:
        res.pop(k, None)
    res.get("config", {}).pop("compilation_config.cudagraph_capture_sizes", None)
    for st in res.get("stages", []):
        for k in _DROP_STAGE:
            st.pop(k, None)
    planner = res.get("planner")
    if planner and "workers" in planner:
        res["planner"] = {
            "max_model_len_after": planner.get("max_model_len_after"),
            "capacity": planner.get("capacity"),
            "workers": [
                {"num_blocks": w["num_blocks"], "kv_cache_groups": w["kv_cache_groups"]}
                for w in planner["workers"]
            ],
        }
    if slim:
        res.pop("executor", None)
        if "config" in res:
            res["config"] = {k: res["config"][k] for k in _SLIM_CONFIG if k in res["config"]}
        for i, st in enumerate(res.get("stages", [])):
            res["stages"][i] = {
                k: st[k] for k in ("pp_rank", "tp_rank", "layers", "model_class", "kv_cache_spec") if k in st
            }
        if res.get("planner") and "workers" in res["planner"]:
            p = res["planner"]
            p.pop("capacity", None)
            for w in p["workers"]:
                w["kv_cache_groups"] = [
                    {"layer_names": g["layer_names"], "spec": g["spec"]} for g in w["kv_cache_groups"]
                ]
    return res


def _write_planner_fixture(family: str, version: str, cases: list[dict[str, Any]], slim: bool) -> None:
    sys.path.insert(0, str(ROOT / "tools" / "vllm_oracle"))
    import run as oracle_run

    with tempfile.TemporaryDirectory(prefix="oracle-oldest-") as tmp:
        cases_path, out = Path(tmp) / "cases.json", Path(tmp) / "out.json"
        cases_path.write_text(json.dumps({"cases": _meta_cases(cases)}))
        python = VENVS / version / "bin" / "python"
        cmd = ["flock", LOCK, str(python), str(META_BUILD), str(cases_path), str(out), "--timeout", "900"]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        raw = json.loads(out.read_text())
    table = oracle_run.SpecTable()
    by_id = {c["id"]: c for c in cases}
    results = {cid: _planner_case(by_id[cid], r, table, slim) for cid, r in raw["results"].items()}
    target = fixture_path(family, version)
    doc = {"schema": 1, "vllm_version": version, "specs": table.specs, "results": results}
    if target.exists():
        old = json.loads(target.read_text())
        old["specs"].update(doc["specs"])
        old["results"].update(doc["results"])
        doc = old
    used: set[str] = set()
    for r in doc["results"].values():
        for st in r.get("stages", []):
            used.update(st["kv_cache_spec"]["spec"])
        for w in (r.get("planner") or {}).get("workers", []):
            used.update(g["spec"] for g in w["kv_cache_groups"])
    doc["specs"] = {k: v for k, v in sorted(doc["specs"].items()) if k in used}
    doc["results"] = dict(sorted(doc["results"].items()))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def _write_mla_fixture(family: str, version: str, cases: list[dict[str, Any]]) -> None:
    """tools/oracle_mla_spec.py's run and compaction, for these cases (whatever
    releases a case lists for the family's own runs)."""
    sys.path.insert(0, str(ROOT / "tools" / "vllm_oracle"))
    import run as oracle_run

    from tools import oracle_mla_spec as mla

    raw: dict[str, Any] = {"results": {}, "groups": {}, "environment": None}
    for flashinfer in (False, True):
        part = [c for c in cases if bool(c.get("standin_flashinfer")) == flashinfer]
        if not part:
            continue
        got = mla._run(version, part, flashinfer)
        raw["results"].update(got["results"])
        for cap, group in got["groups"].items():
            raw["groups"][f"{cap}+flashinfer" if flashinfer else cap] = group
        raw["environment"] = got["environment"]
    info = json.loads((VENVS / version / ".oracle-env.json").read_text())
    fixture = oracle_run.compact(raw, cases, info)
    for cid, result in raw["results"].items():
        for stage, raw_stage in zip(
            fixture["results"][cid].get("stages", []), result.get("stages", []), strict=True
        ):
            stage["draft_layers"] = raw_stage.get("draft_layers", [])
    fixture = mla.trim(fixture)
    target = fixture_path(family, version)
    fixture = mla.merged_over(target, fixture)
    fixture["results"] = dict(sorted(fixture["results"].items()))
    mla.write_fixture(target, fixture)


def run(version: str, families: list[str]) -> int:
    python = VENVS / version / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no oracle environment for {version}: python3 tools/vllm_oracle/venvs.py {version}")
    todo = _todo(version)
    for family, cases in todo.items():
        if families and family not in families:
            continue
        ids = ",".join(c["id"] for c in cases)
        print(f"{family} on {version}: {len(cases)} cases", file=sys.stderr)
        kind = FAMILIES[family]
        if kind == "run":
            cmd = [sys.executable, str(ROOT / "tools" / "vllm_oracle" / "run.py"), "--versions", version]
            subprocess.run(["flock", LOCK, *cmd, "--only", ids], check=True)
        elif kind == "layers":
            cmd = [sys.executable, str(ROOT / "tools" / "oracle_family.py"), family, "--version", version]
            cmd += ["--python", str(python), "--oracle", str(META_BUILD), "--only", ids]
            subprocess.run(["flock", LOCK, *cmd], check=True)
        elif kind == "mla":
            _write_mla_fixture(family, version, cases)
        else:
            _write_planner_fixture(family, version, cases, slim=kind == "slim")
        fixture_results.cache_clear()
        results = fixture_results(family, version) or {}
        for case in cases:
            r = results.get(case["id"], {})
            err = (r.get("error") or {}).get("message", "")
            print(f"  {case['id']}: {r.get('status')} {str(err)[:160]}", file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--all", action="store_true", help="every derived architecture, not only what is missing")
    ap.add_argument("--registries", action="store_true", help="rewrite tests/coverage/registered.json")
    ap.add_argument("--run", metavar="VERSION", help="run the missing cases of that release")
    ap.add_argument("--family", action="append", default=[], help="with --run: only these families")
    ap.add_argument("--list", metavar="VERSION", help="print the cases --run would run")
    args = ap.parse_args()
    if args.registries:
        doc = read_registries()
        REGISTERED.write_text(_format_registered(doc))
        registered.cache_clear()
        print(f"wrote {REGISTERED.relative_to(ROOT)}: {len(doc['names'])} names")
        for line in registry_mismatches():
            print("  " + line)
        return 0
    if args.list:
        for family, cases in _todo(args.list).items():
            print(f"{family}: {' '.join(c['id'] for c in cases)}")
        return 0
    if args.run:
        return run(args.run, args.family)
    return report(args.all)


if __name__ == "__main__":
    raise SystemExit(main())
