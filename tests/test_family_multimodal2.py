"""More multimodal wrappers (GLM-4V and GLM-OCR, BLIP-2, PaddleOCR-VL, Cosmos3
Edge, ...): kvplan's layers equal those vLLM's own model code builds.

Every case of ``tests/oracle/cases/multimodal2.json`` names the releases it is
checked on (``releases``: 0.33.0 and the oldest release whose registry lists
the architecture, where an oracle environment for it exists).  For each,
``tests/oracle/fixtures/multimodal2/vllm-<version>.json`` records the KV cache
spec of every layer vLLM built on each pipeline stage (``tools/oracle_family.py``
runs vLLM's model code on the meta device); kvplan derives the same config and
must name the same layers with the same specs.  A missing fixture or result
fails.
"""

from __future__ import annotations

import json

import pytest
from oracle_layers import ORACLE, cases, compare, fixture, kvplan_stages

from kvplan import api
from kvplan.errors import InputError
from kvplan.model.registry import ARCHITECTURES, WRAPPERS
from kvplan.releases import KNOWN_RELEASES

FAMILY = "multimodal2"

# Oldest releases the oracle could not build an architecture on for a reason of its
# environment (the transformers it installs), with the release checked instead.
ENVIRONMENT_GAPS = {
    ("Glm4vMoeForConditionalGeneration", "0.10.1"): (
        "the oracle's 0.10.1 environment has transformers 4.55.4, which has no glm4v_moe "
        "config (it came in 4.56); checked on 0.10.2 instead"
    ),
    ("PaddleOCRVLForConditionalGeneration", "0.11.1"): (
        "transformers 4.57 (the oracle's environment up to 0.19) has no paddleocr_vl config, "
        "which vLLM 0.11.1 took from the checkpoint's own code; checked on 0.20.0 instead"
    ),
    ("GlmOcrForConditionalGeneration", "0.16.0"): (
        "transformers 4.57 (the oracle's environment up to 0.19) has no glm_ocr config; "
        "checked on 0.20.0 instead"
    ),
    ("CohereCompassForConditionalGeneration", "0.30.0"): (
        "the oracle's 0.30.0 environment has transformers 5.10.4, which has no cohere_compass "
        "config; checked on 0.32.0 instead"
    ),
}


def _params():
    for case in cases(FAMILY):
        for version in case["releases"]:
            yield pytest.param(version, case, id=f"{version}-{case['id']}")


@pytest.mark.parametrize(("version", "case"), list(_params()))
def test_layers_equal_vllm(version, case):
    path = ORACLE / "fixtures" / FAMILY / f"vllm-{version}.json"
    assert path.exists(), f"missing oracle fixture {path}: run tools/oracle_family.py {FAMILY}"
    data = fixture(FAMILY, version)
    result = data["results"].get(case["id"])
    assert result is not None, f"no vLLM {version} result for {case['id']}: rerun tools/oracle_family.py"
    if result["status"] not in ("ok", "planner_error"):
        # vLLM refused the case: kvplan must refuse it as well.
        with pytest.raises(InputError):
            kvplan_stages(case, version)
        return
    assert compare(case, result, data["specs"], version) == []


def _architecture(case):
    return json.loads((ORACLE / "configs" / case["config"] / "config.json").read_text())["architectures"][0]


def test_every_architecture_is_checked_on_its_oldest_release():
    # The oldest release serving each architecture (the ``since`` of its registry entry,
    # from vLLM's registry.py per release) has a case, unless the oracle's environment for
    # it could not read the config (ENVIRONMENT_GAPS).
    checked: dict[str, set[str]] = {}
    for case in cases(FAMILY):
        checked.setdefault(_architecture(case), set()).update(case["releases"])
    for arch, releases in checked.items():
        entry = WRAPPERS.get(arch) or ARCHITECTURES[arch]
        oldest = entry.since or KNOWN_RELEASES[0]
        assert "0.33.0" in releases, arch
        assert oldest in releases or (arch, oldest) in ENVIRONMENT_GAPS, (arch, oldest, releases)


@pytest.mark.parametrize(("architecture", "version"), sorted(ENVIRONMENT_GAPS))
def test_environment_gaps_are_what_vllm_said(architecture, version):
    # The fixture of the release keeps vLLM's refusal: its transformers does not know the
    # config's model_type (arg_utils.create_model_config).
    results = [
        r
        for case in cases(FAMILY)
        if _architecture(case) == architecture
        and (r := fixture(FAMILY, version)["results"].get(case["id"])) is not None
    ]
    assert results, (architecture, version)
    for r in results:
        assert r["status"] == "config_error"
        assert "Transformers does not recognize this architecture" in r["error"]["message"]


@pytest.mark.parametrize(
    ("architecture", "reason"),
    [
        ("UnlimitedOCRForCausalLM", "RSWASpec"),
        ("KimiK3ForConditionalGeneration", "prefill checkpoint blocks"),
        ("OpenPanguVLForConditionalGeneration", "image processor"),
        ("DiffusionGemmaForBlockDiffusion", "DiffusionGemmaTextConfig"),
    ],
)
def test_unchecked_wrappers_are_refused_with_the_reason(architecture, reason):
    # These names are in vLLM 0.33.0's registry, but their KV cache needs a spec kind kvplan
    # lacks, or vLLM builds them only from checkpoint files the checks cannot stand in for.
    cfg = {"architectures": [architecture], "text_config": {"model_type": "llama"}}
    with pytest.raises(InputError, match=reason):
        api.plan(cfg, kv_cache_memory="20GiB")


def test_blip2_keeps_opts_decoder_path():
    # blip2.py builds OPT under "language_model"; OPT's decoder layers sit at
    # model.decoder.layers, so vLLM names them language_model.model.decoder.layers.<i>.
    # Blip2Config's OPT defaults: 12 layers, 12 heads of 768 / 12 = 64.
    r = api.plan("tests/oracle/configs/blip2-defaults/config.json", kv_cache_memory="20GiB")
    specs = r.layout.stage_specs[0]
    name = "language_model.model.decoder.layers.11.self_attn.attn"
    assert len(specs) == 12 and (specs[name].num_kv_heads, specs[name].head_size) == (12, 64)


def test_nemotron_omni_keeps_the_model_dtype_for_ssm_state():
    # vLLM's config fix-up that gives Nemotron-H's SSM state float32 (model_executor/models/
    # config.py NemotronHNanoVLV2Config) is registered for NemotronH_Nano_VL_V2 only; the Omni
    # names keep --mamba-ssm-cache-dtype auto, the model's bfloat16 (the fixtures agree).
    def ssm_dtype(config):
        r = api.plan(f"tests/oracle/configs/{config}/config.json", kv_cache_memory="20GiB")
        return r.layout.stage_specs[0]["language_model.model.layers.0.mixer"].dtypes

    assert ssm_dtype("nemotron-nano-vl-v2-like") == ("bfloat16", "float32")
    assert ssm_dtype("nemotron-omni-v3-like") == ("bfloat16", "bfloat16")
