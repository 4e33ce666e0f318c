"""Fuzzing the MODEL inputs: every malformed file plans or exits 2, never a traceback or a hang.

A seeded generator mutates a valid Llama ``config.json`` and valid kvplan model
YAMLs (``serving:``, ``layers:``, ``budget:``): values of random types, missing
and extra keys, huge, zero and negative numbers, NaN and infinity, non-UTF-8
bytes, truncation, deep nesting, YAML anchors, aliases and a small alias bomb,
self-referencing aliases, unsafe YAML tags, empty files, directories, FIFOs,
symlinks to devices, oversized and unreadable files.  Each case runs through
``kvplan plan FILE --kv-cache-memory 20GiB --format json`` in-process.
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from kvplan.cli import app
from kvplan.inputs.files import MAX_FILE_BYTES

SEED = 20_240_611
NUM_MUTATIONS = 2_000  # random mutations; the fixed special cases come on top
CASE_SECONDS = 10  # any single case taking longer counts as a hang
ARGS = ("--kv-cache-memory", "20GiB", "--format", "json")

# meta-llama/Llama-3.1-8B-Instruct's config.json.
LLAMA: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}

SERVING: dict[str, Any] = {
    "tp": 2,
    "pp": 2,
    "max_model_len": 8192,
    "kv_cache_dtype": "fp8",
    "block_size": 16,
    "max_num_seqs": 128,
    "max_num_batched_tokens": 4096,
    "gpu_memory_utilization": 0.9,
    "disable_hybrid_kv_cache_manager": False,
    "vllm_version": "0.33.0",
}
BUDGET: dict[str, Any] = {"min_kv_tokens": 100_000, "min_concurrency": 2, "max_model_len_must_fit": True}


def _explicit_model() -> dict[str, Any]:
    """A model YAML with ``layers:``: full and sliding-window attention, 8 layers."""
    layers: list[dict[str, Any]] = []
    for i in range(8):
        entry: dict[str, Any] = {
            "name": f"model.layers.{i}.self_attn.attn",
            "type": "full" if i % 4 == 3 else "sliding_window",
            "num_kv_heads": 8,
            "head_size": 128,
            "dtype": "bfloat16",
        }
        if entry["type"] == "sliding_window":
            entry["sliding_window"] = 4096
        layers.append(entry)
    return {
        "architectures": ["MyHybridForCausalLM"],
        "max_position_embeddings": 32768,
        "torch_dtype": "bfloat16",
        "serving": {"tp": 1, "max_model_len": 16384},
        "layers": layers,
        "budget": dict(BUDGET),
    }


def _mamba_model() -> dict[str, Any]:
    """A model YAML with Mamba and MLA layers in ``layers:``."""
    return {
        "architectures": ["MyMambaForCausalLM"],
        "max_position_embeddings": 8192,
        "torch_dtype": "bfloat16",
        "layers": [
            {"name": "model.layers.0.mixer", "type": "mamba", "shapes": [[3, 1024], [8, 64, 64]],
             "dtypes": ["bfloat16", "bfloat16"]},
            {"name": "model.layers.1.self_attn.attn", "type": "mla", "kv_lora_rank": 512,
             "qk_rope_head_dim": 64, "block_size": 64},
        ],
    }  # fmt: skip


BASES: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("json", lambda: copy.deepcopy(LLAMA)),
    ("yaml", lambda: {**copy.deepcopy(LLAMA), "serving": dict(SERVING), "budget": dict(BUDGET)}),
    ("yaml", _explicit_model),
    ("yaml", _mamba_model),
]

_STRINGS = [
    "", " ", "abc", "80GiB", "20GB", "-5", "0", "1e9", "NaN", "inf", "-inf", "auto", "fp8", "none",
    "true", "null", "~", "LlamaForCausalLM", "full", "mamba", "bfloat16", "int3", "\x00", "\u202e",
    "名前", "\ud7ff", "0x10", "1_000", "12k", "-1", "99999TiB", "1,2,3", "7,8,8,7", "x" * 10_000,
]  # fmt: skip
_NUMBERS = [
    0, 1, -1, 2, 3, 7, 16, 64, 4096, -(2**31), 2**31, 2**63, 10**30, -(10**30), 10**400,
    0.0, -0.0, 0.5, -0.5, 1.5, 1e308, 1e-308, float("inf"), float("-inf"), float("nan"),
]  # fmt: skip


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A value of a random type: scalar, string, number, list or mapping."""
    roll = rng.random()
    if roll < 0.30:
        return rng.choice(_NUMBERS)
    if roll < 0.35:
        return rng.randint(-(10**6), 10**6)
    if roll < 0.55:
        return rng.choice(_STRINGS)
    if roll < 0.65:
        return rng.choice([None, True, False])
    if roll < 0.72:
        return "".join(chr(rng.randint(1, 0x2FF)) for _ in range(rng.randint(0, 20)))
    if depth > 3:
        return None
    if roll < 0.86:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.96:
        return {rng.choice(_KEYS): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    nested: Any = rng.choice([1, "x", None])
    for _ in range(rng.randint(5, 200)):
        nested = [nested] if rng.random() < 0.5 else {"k": nested}
    return nested


_KEYS = sorted(
    set(LLAMA)
    | set(SERVING)
    | set(BUDGET)
    | {"serving", "layers", "budget", "config", "text_config", "head_dim", "sliding_window", "layer_types",
       "use_sliding_window", "max_window_layers", "sliding_window_pattern", "attention_chunk_size",
       "no_rope_layers", "kv_lora_rank", "qk_rope_head_dim", "name", "type", "num_kv_heads", "head_size",
       "dtype", "shapes", "dtypes", "block_size", "page_size_padded", "index", "gpu", "gpu_memory",
       "kv_cache_memory", "pp_layer_partition", "dcp", "num_gpu_blocks_override", "enforce_eager",
       "probe", "bogus", "", "1"}
)  # fmt: skip


def _containers(data: Any) -> list[Any]:
    """Every dict and list inside ``data`` (``data`` included)."""
    out, stack = [], [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            out.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            out.append(item)
            stack.extend(item)
    return out


def mutate(rng: random.Random, data: dict[str, Any]) -> dict[str, Any]:
    """One to four structural mutations: change, delete, add or retype a value."""
    for _ in range(rng.randint(1, 4)):
        target = rng.choice(_containers(data))
        op = rng.random()
        if isinstance(target, dict):
            keys = list(target)
            if keys and op < 0.5:
                target[rng.choice(keys)] = random_value(rng)
            elif keys and op < 0.75:
                del target[rng.choice(keys)]
            else:
                key: Any = rng.choice(_KEYS)
                if rng.random() < 0.1:
                    key = rng.choice([1, 2.5, True, None])  # non-string keys (YAML only)
                target[key] = random_value(rng)
        elif target:
            i = rng.randrange(len(target))
            if op < 0.6:
                target[i] = random_value(rng)
            elif op < 0.8:
                del target[i]
            else:
                target.append(copy.deepcopy(rng.choice(target)))
        else:
            target.append(random_value(rng))
    return data


def serialize(rng: random.Random, kind: str, data: dict[str, Any]) -> bytes:
    """JSON or YAML text for ``data`` (JSON may carry NaN/Infinity, as Python writes them)."""
    if kind == "json":
        try:
            return json.dumps(data, indent=rng.choice([None, 2])).encode()
        except (TypeError, ValueError):  # non-string keys: write them as YAML would anyway
            return json.dumps({str(k): v for k, v in data.items()}, default=str).encode()
    try:
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=rng.choice([None, False, True]))
    except yaml.YAMLError:
        text = json.dumps(data, default=str)
    return text.encode("utf-8", "surrogatepass")


def corrupt(rng: random.Random, blob: bytes) -> bytes:
    """A byte-level corruption: truncation, stray bytes, a deleted or doubled line, a BOM."""
    op = rng.randrange(7)
    if op == 0 and blob:
        return blob[: rng.randrange(len(blob))]
    if op == 1:
        at = rng.randrange(len(blob) + 1)
        junk = rng.choice([b"\xff", b"\xfe\xff", b"\xc3", b"\x00", b"\x80\x80", bytes([rng.randrange(256)])])
        return blob[:at] + junk + blob[at:]
    if op == 2:
        lines = blob.split(b"\n")
        del lines[rng.randrange(len(lines))]
        return b"\n".join(lines)
    if op == 3:
        lines = blob.split(b"\n")
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return b"\n".join(lines)
    if op == 4:
        return b"\xef\xbb\xbf" + blob
    if op == 5:
        return blob.replace(b" ", b"\t", 1)
    at = rng.randrange(len(blob) + 1)
    return (
        blob[:at] + rng.choice([b"[", b"{", b"}", b"]", b":", b"- ", b"&a ", b"*a", b'"', b"'"]) + blob[at:]
    )


def _alias_bomb(levels: int, width: int) -> bytes:
    """The billion-laughs shape, ``width ** levels`` strings, kept small by the caller."""
    lines = [_LLAMA_YAML.rstrip("\n"), f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return ("\n".join(lines) + "\n").encode()


_LLAMA_YAML = yaml.safe_dump(LLAMA, sort_keys=False)

FIXED_TEXTS: list[tuple[str, bytes]] = [
    ("empty.yaml", b""),
    ("empty.json", b""),
    ("blank.yaml", b"   \n\n"),
    ("null.yaml", b"null\n"),
    ("tilde.yaml", b"~\n"),
    ("list.yaml", b"- 1\n- 2\n"),
    ("scalar.json", b"42"),
    ("string.json", b'"LlamaForCausalLM"'),
    ("docs.yaml", b"---\na: 1\n---\nb: 2\n"),
    ("python-tag.yaml", b"!!python/object/apply:os.system ['echo pwned']\n"),
    ("python-name.yaml", b"architectures: !!python/name:os.system\n"),
    ("binary.yaml", b"architectures: !!binary aGVsbG8=\n"),
    ("set.yaml", b"architectures: !!set {LlamaForCausalLM}\n"),
    ("timestamp.yaml", _LLAMA_YAML.encode() + b"torch_dtype: 2024-01-01\n"),
    ("latin1.yaml", "architectures: [Llama\xe9]\n".encode("latin-1")),
    ("utf16.json", json.dumps(LLAMA).encode("utf-16")),
    ("bom.json", b"\xef\xbb\xbf" + json.dumps(LLAMA).encode()),
    ("nan.json", json.dumps({**LLAMA, "num_hidden_layers": float("nan")}).encode()),
    ("inf.yaml", _LLAMA_YAML.encode() + b"serving: {gpu_memory_utilization: .inf}\n"),
    ("bigint.json", json.dumps({**LLAMA, "num_hidden_layers": 10**4000}).encode()),
    ("longdigits.json", b'{"num_hidden_layers": ' + b"9" * 5000 + b"}"),
    ("longdigits.yaml", b"num_hidden_layers: " + b"9" * 5000 + b"\n"),
    ("self-alias.yaml", b"architectures: [LlamaForCausalLM]\na: &a [1, *a]\n"),
    ("self-alias-map.yaml", b"architectures: [LlamaForCausalLM]\nserving: &s {tp: 2, x: *s}\n"),
    ("serving-alias.yaml", _LLAMA_YAML.encode() + b"defaults: &d {tp: 2, pp: 2}\nserving: *d\n"),
    ("merge-key.yaml", b"base: &b\n" + _LLAMA_YAML.replace("\n", "\n  ").encode() + b"\n<<: *b\n"),
    ("undefined-alias.yaml", b"architectures: *nope\n"),
    ("alias-bomb-small.yaml", _alias_bomb(4, 9)),
    ("alias-bomb.yaml", _alias_bomb(9, 9)),
    ("deep-flow-1k.yaml", b"a: " + b"[" * 1000 + b"]" * 1000 + b"\n"),
    ("deep-flow-100k.yaml", b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n"),
    ("deep-unclosed.yaml", b"a: " + b"{a: " * 50_000 + b"\n"),
    ("deep-dashes.yaml", b"- " * 100_000 + b"x\n"),
    ("deep-block.yaml", "".join(" " * i + "k:\n" for i in range(3000)).encode()),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000),
    ("deep-obj.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("tabs.yaml", b"architectures:\n\t- LlamaForCausalLM\n"),
    ("dup-keys.yaml", _LLAMA_YAML.encode() + b"num_hidden_layers: 0\nnum_hidden_layers: -3\n"),
    ("crlf.yaml", _LLAMA_YAML.replace("\n", "\r\n").encode()),
    ("nul.yaml", _LLAMA_YAML.encode() + b"\x00"),
    ("yaml-in-json.json", _LLAMA_YAML.encode()),
    ("json-in-yaml.yaml", json.dumps(LLAMA).encode()),
    ("layers-scalar.yaml", _LLAMA_YAML.encode() + b"layers: 7\n"),
    ("layers-empty.yaml", _LLAMA_YAML.encode() + b"layers: []\n"),
    ("serving-list.yaml", _LLAMA_YAML.encode() + b"serving: [1, 2]\n"),
    ("budget-string.yaml", _LLAMA_YAML.encode() + b"budget: lots\n"),
    ("config-section.yaml", b"name: x\nconfig:\n" + _LLAMA_YAML.replace("\n", "\n  ").encode()),
    ("text-config.json", json.dumps({"architectures": ["Gemma3ForConditionalGeneration"],
                                      "text_config": [1, 2]}).encode()),
    ("upper.YML", _LLAMA_YAML.encode()),
    ("config.txt", _LLAMA_YAML.encode()),
    ("oversized.yaml", b"#" * (MAX_FILE_BYTES + 1)),
]  # fmt: skip


def fixed_cases(root: Path) -> Iterator[tuple[str, Path]]:
    """Hand-picked inputs: the files above, directories, links, devices, pipes."""
    for name, blob in FIXED_TEXTS:
        path = root / "fixed" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(blob)
        yield name, path
    empty_dir = root / "empty-dir"
    empty_dir.mkdir()
    yield "directory without config.json", empty_dir
    model_dir = root / "model-dir"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(LLAMA))
    yield "model directory", model_dir
    dir_config = root / "dir-config"
    (dir_config / "config.json").mkdir(parents=True)
    yield "config.json that is a directory", dir_config
    yaml_dir = root / "dir.yaml"
    yaml_dir.mkdir()
    yield "directory named .yaml", yaml_dir
    unreadable = root / "unreadable.yaml"
    unreadable.write_text(_LLAMA_YAML)
    unreadable.chmod(0)  # root still reads it; then it must plan
    yield "unreadable file", unreadable
    dangling = root / "dangling.yaml"
    dangling.symlink_to(root / "missing.yaml")
    yield "dangling symlink", dangling
    loop = root / "loop.yaml"
    loop.symlink_to(loop)
    yield "symlink loop", loop
    yield "missing file", root / "missing.json"
    yield "missing parent", root / "no" / "such" / "config.json"
    if os.path.exists("/dev/zero"):
        device = root / "zero.yaml"
        device.symlink_to("/dev/zero")
        yield "symlink to /dev/zero", device
    if hasattr(os, "mkfifo"):
        fifo = root / "fifo.yaml"
        os.mkfifo(fifo)
        yield "named pipe", fifo


def random_cases(root: Path, count: int) -> Iterator[tuple[str, Path]]:
    """``count`` seeded mutations of the base inputs, each written to its own file."""
    rng = random.Random(SEED)
    folder = root / "random"
    folder.mkdir()
    for i in range(count):
        kind, make = rng.choice(BASES)
        data = make()
        if rng.random() < 0.9:
            data = mutate(rng, data)
        blob = serialize(rng, kind, data)
        if rng.random() < 0.25:
            blob = corrupt(rng, blob)
        suffix = ".json" if kind == "json" else rng.choice([".yaml", ".yml"])
        path = folder / f"case{i:04d}{suffix}"
        path.write_bytes(blob)
        yield f"case {i} ({kind})", path


class Hang(Exception):
    """A case ran past ``CASE_SECONDS``."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise ``Hang`` in the main thread after ``seconds`` (no-op where SIGALRM is missing)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_case(runner: CliRunner, label: str, path: Path) -> str | None:
    """Run one case; the problem with it in words, or None when it behaved."""
    try:
        with time_limit(CASE_SECONDS):
            result = runner.invoke(app, ["plan", str(path), *ARGS])
    except Hang as exc:
        return f"{label}: {exc}"
    out = result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        return f"{label}: {type(exc).__name__}: {exc!s:.300} ({path})"
    if result.exit_code not in (0, 2):
        return f"{label}: exit code {result.exit_code}: {out[:300]!r}"
    if "Traceback" in out:
        return f"{label}: traceback in the output"
    if result.exit_code == 2:
        if not result.stderr.startswith("kvplan: error:"):
            return f"{label}: exit 2 without 'kvplan: error:': {result.stderr[:300]!r}"
        if result.stdout:
            return f"{label}: exit 2 but wrote to stdout"
    elif not result.stdout.lstrip().startswith("{"):
        return f"{label}: exit 0 without a JSON document"
    return None


def test_fuzz_model_inputs(tmp_path: Path) -> None:
    """Every case exits 0 with a plan or 2 with one ``kvplan: error:`` message, none hanging.

    Each case has its own hang limit (``CASE_SECONDS``); how long the whole run
    takes is not asserted (speed is measured in benchmarks/, not here).
    """
    runner = CliRunner()
    start = time.perf_counter()
    problems: list[str] = []
    cases = [*fixed_cases(tmp_path), *random_cases(tmp_path, NUM_MUTATIONS)]
    try:
        for label, path in cases:
            problem = check_case(runner, label, path)
            if problem:
                problems.append(problem)
    finally:
        for path in tmp_path.rglob("*"):
            if path.is_file() and not path.is_symlink():
                path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    elapsed = time.perf_counter() - start
    print(f"{len(cases)} fuzz cases in {elapsed:.1f} s", file=sys.stderr)
    assert len(cases) >= 2_000
    assert not problems, f"{len(problems)} of {len(cases)} cases misbehaved:\n" + "\n".join(problems[:25])


@pytest.mark.parametrize("levels", [3, 9])
def test_alias_bomb_is_refused_or_planned_quickly(tmp_path: Path, levels: int) -> None:
    """A billion-laughs YAML neither hangs nor expands: small ones plan, big ones exit 2."""
    path = tmp_path / "bomb.yaml"
    path.write_bytes(_alias_bomb(levels, 9))
    with time_limit(CASE_SECONDS):  # a hang guard, not a speed test
        result = CliRunner().invoke(app, ["plan", str(path), *ARGS])
    if levels == 3:
        assert result.exit_code == 0, result.stderr
    else:
        assert result.exit_code == 2
        assert "1,000,000 values" in result.stderr
