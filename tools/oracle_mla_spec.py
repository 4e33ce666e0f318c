"""Run vLLM's own code (the meta-device oracle) on one family's cases and write
its fixtures.

    python tools/oracle_mla_spec.py mla --versions 0.33.0,0.19.1
    python tools/oracle_mla_spec.py spec --versions 0.33.0 --only deepseek-v3-mtp1-tp1

Reads ``tests/oracle/cases/<family>.json`` (cases as the oracle takes them,
``config`` naming a folder under ``tests/oracle/configs``), runs the oracle's
``kvplan/workflows/vllm_meta.py`` inside the release's venv (``/work/oracle-venvs/<version>``,
under ``flock /work/oracle.lock``), and writes the compact result to
``tests/oracle/fixtures/<family>/vllm-<version>.json`` (the oracle's fixture
format, vLLM's answers only).  The oracle's directory is ``$ORACLE_DIR``,
else ``tools/vllm_oracle`` of this repository.

Inside the venv (``--inside``) this file extends the oracle with what these
families need and the oracle does not do yet (each listed in the fixture's
``standins``):

* the speculative drafter: on the last pipeline stage the draft model is built
  with the release's own helper, as its model runner's speculator does (V2
  runner: ``v1/worker/gpu/spec_decode/eagle/utils.py`` ``load_eagle_model``;
  V1 runner: the proposer's ``get_model`` under the ``eagle_head`` tag), and
  the new attention layers are flagged ``is_draft_layer`` as the speculator
  flags them;
* the workspace manager the GPU model runner creates in its constructor, on
  the meta device (FlashMLA's sparse backend asks it for scratch buffers);
* DeepGEMM's availability check in the sparse indexer's constructor
  (``sparse_attn_indexer.py``), which decides whether kernels exist, not any
  cache spec;
* with ``"standin_flashinfer": true`` on a case: the flashinfer package (a
  dependency of vLLM's CUDA wheels) importable as stub modules, so that the
  backend selection sees FlashInfer's MLA backend as a B200 with vLLM's wheel
  does (only for bf16 checkpoints: fp8 weight processing would call it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORACLE_TESTS = REPO / "tests" / "oracle"


def _oracle_dir() -> Path:
    env = os.environ.get("ORACLE_DIR")
    if env:
        return Path(env)
    return REPO / "kvplan" / "workflows"


# --------------------------------------------------------------------------
# inside the release's venv
# --------------------------------------------------------------------------
def _extend(mb) -> None:  # noqa: ANN001 - the oracle's module
    original_build = mb.build_stage
    original_install = mb.Standins.install

    def load_drafter(vllm_config, model) -> list[str]:  # noqa: ANN001
        from vllm.config import get_layers_from_vllm_config
        from vllm.model_executor.layers.attention_layer_base import AttentionLayerBase

        before = set(get_layers_from_vllm_config(vllm_config, AttentionLayerBase))
        load_eagle_model = None
        with contextlib.suppress(ImportError):
            from vllm.v1.worker.gpu.spec_decode.eagle.utils import load_eagle_model
        if load_eagle_model is not None and mb._get(vllm_config, "use_v2_model_runner", False):
            load_eagle_model(model, vllm_config)
        else:
            from vllm.compilation.backends import set_model_tag
            from vllm.model_executor.model_loader import get_model

            with set_model_tag("eagle_head"):
                get_model(
                    vllm_config=vllm_config, model_config=vllm_config.speculative_config.draft_model_config
                )
        layers = get_layers_from_vllm_config(vllm_config, AttentionLayerBase)
        added = sorted(set(layers) - before)
        for name in added:
            layers[name].is_draft_layer = True
        return added

    def build_stage(vllm_config, case, pp_rank, standins, store_dir):  # noqa: ANN001
        import torch
        import vllm.model_executor.model_loader as ml

        with contextlib.suppress(ImportError):
            import vllm.model_executor.layers.sparse_attn_indexer as sai

            if hasattr(sai, "has_deep_gemm"):
                sai.has_deep_gemm = lambda: True
                standins.hit("ext: sparse_attn_indexer.has_deep_gemm answers True")
        with contextlib.suppress(ImportError):
            import vllm.v1.worker.workspace as ws

            if getattr(ws, "_manager", None) is None:
                ws.init_workspace_manager(torch.device("meta"))
                standins.hit("ext: init_workspace_manager(meta)")
        spec = vllm_config.speculative_config
        last = pp_rank == vllm_config.parallel_config.pipeline_parallel_size - 1
        drafted: list[str] = []
        original_loader = ml.get_model_loader
        # ngram and the other model-free proposers keep the target's config as their
        # "draft" config and build nothing.
        drafts = spec is not None and spec.method in ("eagle", "eagle3", "mtp")
        if drafts and getattr(spec, "draft_model_config", None) is not None and last:

            def get_loader(load_config):  # noqa: ANN001
                loader = original_loader(load_config)
                load = loader.load_model

                def load_model(*args, **kwargs):  # noqa: ANN002, ANN003
                    model = load(*args, **kwargs)
                    ml.get_model_loader = original_loader
                    drafted.extend(load_drafter(vllm_config, model))
                    return model

                loader.load_model = load_model
                return loader

            ml.get_model_loader = get_loader
        try:
            out = original_build(vllm_config, case, pp_rank, standins, store_dir)
        finally:
            ml.get_model_loader = original_loader
        out["draft_layers"] = drafted
        return out

    def install(self, scratch):  # noqa: ANN001
        original_install(self, scratch)
        self.applied.append(
            "ext: speculative drafter built on the last stage with the release's own loader helper; "
            "workspace manager on meta; sparse indexer's DeepGEMM check answers True"
        )
        if os.environ.get("ORACLE_FAMILY_FLASHINFER") != "1":
            return
        import importlib.abc
        import importlib.machinery
        import importlib.util
        import types

        if importlib.util.find_spec("flashinfer") is not None:
            return
        standins = self

        class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
                if fullname == "flashinfer" or fullname.startswith("flashinfer."):
                    return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
                return None

            def create_module(self, spec):  # noqa: ANN001
                module = types.ModuleType(spec.name)
                module.__path__ = []
                return module

            def exec_module(self, module):  # noqa: ANN001
                standins.hit(f"stub:{module.__name__}")
                module.__getattr__ = mb._stub_attr(module.__name__, standins)

        sys.meta_path.insert(0, Finder())
        self.applied.append("ext: flashinfer importable as stub modules (its functions raise when called)")

    original_create = mb.create_config

    def create_config(case):  # noqa: ANN001
        args = dict(case.get("args") or {})
        if args.pop("skip_tokenizer_init", True):
            return original_create(case)
        # A model that reads its tokenizer while it is built (DeepSeek-VL2) needs it loaded.
        from vllm.engine.arg_utils import EngineArgs
        from vllm.usage.usage_lib import UsageContext

        args.setdefault("tensor_parallel_size", case.get("tp", 1))
        args.setdefault("pipeline_parallel_size", case.get("pp", 1))
        engine_args = EngineArgs(model=str(case["config_dir"]), load_format="dummy", **args)
        return engine_args.create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)

    mb.build_stage = build_stage
    mb.create_config = create_config
    mb.Standins.install = install


def inside(argv: list[str]) -> int:
    sys.path.insert(0, str(_oracle_dir()))
    import vllm_meta as mb

    _extend(mb)
    return mb.main(argv)


# --------------------------------------------------------------------------
# the driver (kvplan's venv)
# --------------------------------------------------------------------------
def _run(version: str, cases: list[dict], flashinfer: bool) -> dict:
    venv = Path("/work/oracle-venvs") / version
    with tempfile.TemporaryDirectory(prefix="oracle-family-") as tmp:
        path = Path(tmp) / "cases.json"
        meta = []
        for case in cases:
            case = {k: v for k, v in case.items() if k not in ("config", "standin_flashinfer")}
            meta.append(case)
        for case, src in zip(meta, cases, strict=True):
            case["config_dir"] = str(ORACLE_TESTS / "configs" / src["config"])
            spec = (case.get("args") or {}).get("speculative_config")
            if (
                isinstance(spec, dict)
                and isinstance(spec.get("model"), str)
                and not spec["model"].startswith("/")
            ):
                spec["model"] = str(ORACLE_TESTS / "configs" / spec["model"])
        path.write_text(json.dumps({"cases": meta}))
        out = Path(tmp) / "out.json"
        env = {**os.environ, "ORACLE_FAMILY_FLASHINFER": "1" if flashinfer else "0"}
        cmd = [
            "flock",
            "/work/oracle.lock",
            str(venv / "bin" / "python"),
            __file__,
            "--inside",
            str(path),
            str(out),
        ]
        subprocess.run(cmd, check=True, env=env)
        return json.loads(out.read_text())


# The resolved config values the tests read (vLLM's batch defaults and the cache's block size / dtype).
_CONFIG_KEYS = (
    "cache_config.block_size",
    "cache_config.cache_dtype",
    "model_config.max_model_len",
    "scheduler_config.max_num_batched_tokens",
    "scheduler_config.max_num_seqs",
    "use_v2_model_runner",
)


def merged_over(target: Path, fixture: dict) -> dict:
    """``fixture``'s answers over those ``target`` already holds (the new ones win)."""
    if not target.exists():
        return fixture
    old = json.loads(target.read_text())
    old["specs"].update(fixture["specs"])
    old["results"].update(fixture["results"])
    for key in ("gpus", "standins", "import_seconds"):
        old[key].update(fixture[key])
    return old


def write_fixture(target: Path, fixture: dict) -> None:
    """One compact JSON line, as the tests read it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(fixture, indent=None, separators=(",", ":")) + "\n")


def trim(fixture: dict) -> dict:
    """Keep what the tests compare: statuses and errors, the resolved batch defaults, every
    stage's layers and specs, backends, and the planner's groups, blocks and capacity."""
    for result in fixture["results"].values():
        for key in ("warnings", "meta_value_reads", "standins_used"):
            result.pop(key, None)
        if "config" in result:
            result["config"] = {k: v for k, v in result["config"].items() if k in _CONFIG_KEYS}
        for stage in result.get("stages", []):
            for key in ("bytes", "kv_cache_layouts", "seconds_build", "attention_backend_layers"):
                stage.pop(key, None)
        planner = result.get("planner") or {}
        stages = result.get("stages", [])
        for rank, worker in enumerate(planner.get("workers", [])):
            # Group members as positions in that worker's stage layer list (vLLM's names, shorter).
            names = stages[rank]["kv_cache_spec"]["layers"] if rank < len(stages) else []
            where = {name: i for i, name in enumerate(names)}
            for group in worker.get("kv_cache_groups", []):
                if "layer_names" in group and all(n in where for n in group["layer_names"]):
                    group["layers"] = [where[n] for n in group.pop("layer_names")]
            for tensor in worker.get("kv_cache_tensors", []):
                for key in ("layers", "shared_by"):
                    if key in tensor:
                        tensor["num_layers"] = len(tensor.pop(key))
    used = {
        key
        for result in fixture["results"].values()
        for stage in result.get("stages", [])
        for key in stage["kv_cache_spec"]["spec"]
    } | {
        group["spec"]
        for result in fixture["results"].values()
        for worker in (result.get("planner") or {}).get("workers", [])
        for group in worker["kv_cache_groups"]
    }
    fixture["specs"] = {k: v for k, v in fixture["specs"].items() if k in used}
    return fixture


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        return inside(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family")
    ap.add_argument("--versions", default="0.33.0")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    sys.path.insert(0, str(_oracle_dir()))
    import run as oracle_run  # the oracle's compaction

    cases = json.loads((ORACLE_TESTS / "cases" / f"{args.family}.json").read_text())["cases"]
    only = {s for s in args.only.split(",") if s}
    for version in [v for v in args.versions.split(",") if v]:
        wanted = [
            c for c in cases if (not only or c["id"] in only) and version in c.get("releases", [version])
        ]
        raw: dict = {"results": {}, "groups": {}, "environment": None}
        for flashinfer in (False, True):
            part = [c for c in wanted if bool(c.get("standin_flashinfer")) == flashinfer]
            if not part:
                continue
            got = _run(version, part, flashinfer)
            raw["results"].update(got["results"])
            for cap, group in got["groups"].items():
                key = f"{cap}+flashinfer" if flashinfer else cap
                raw["groups"][key] = group
            raw["environment"] = got["environment"]
        info = Path("/work/oracle-venvs") / version / ".oracle-env.json"
        fixture = oracle_run.compact(raw, wanted, json.loads(info.read_text()))
        for cid, result in raw["results"].items():
            # The drafter's layers, as this extension recorded them (not part of the oracle's format).
            for stage, raw_stage in zip(
                fixture["results"][cid].get("stages", []), result.get("stages", []), strict=True
            ):
                stage["draft_layers"] = raw_stage.get("draft_layers", [])
        fixture = trim(fixture)
        target = ORACLE_TESTS / "fixtures" / args.family / f"vllm-{version}.json"
        if only:
            fixture = merged_over(target, fixture)
        write_fixture(target, fixture)
        statuses: dict[str, int] = {}
        for r in fixture["results"].values():
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        print(json.dumps({"family": args.family, "version": version, "statuses": statuses}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
