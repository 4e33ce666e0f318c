"""``@record`` behaves as ``@dataclass``: every expected value here is what CPython's own
``dataclasses.dataclass`` gives for the same class, built side by side."""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import pickle
import pkgutil
from dataclasses import (
    FrozenInstanceError,
    asdict,
    astuple,
    dataclass,
    field,
    fields,
    make_dataclass,
    replace,
)
from pathlib import Path
from typing import Any, ClassVar

import pytest

import kvplan
from kvplan import records
from kvplan.records import record


def _family(deco: Any) -> tuple[type, type, type]:
    @deco(frozen=True)
    class Base:
        """A frozen class compared by its fields."""

        kind: ClassVar[str] = "base"
        a: int
        b: str = "s"
        c: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
        d: bool = field(default=False, kw_only=True, compare=False)

    @deco(frozen=True, kw_only=True, eq=False)
    class Sub(Base):
        """A keyword-only subclass that keeps its base's equality."""

        e: int
        f: int | None = None

    @deco(eq=False)
    class Plain:
        """A mutable class compared by identity."""

        x: int
        y: list[int] = field(default_factory=list)

    return Base, Sub, Plain


# Module-level twins, so pickle can find them by name.
DBase, DSub, DPlain = _family(dataclass)
RBase, RSub, RPlain = _family(record)
for _cls in (DBase, DSub, DPlain):
    _cls.__qualname__ = "D" + _cls.__name__
for _cls in (RBase, RSub, RPlain):
    _cls.__qualname__ = "R" + _cls.__name__
PAIRS = [(DBase, RBase), (DSub, RSub), (DPlain, RPlain)]


@pytest.mark.parametrize(("dc", "rc"), PAIRS, ids=lambda c: c.__name__)
def test_fields_signature_and_match_args(dc, rc):
    assert [(f.name, f.type, f.kw_only, f.compare, f.repr) for f in fields(rc)] == [
        (f.name, f.type, f.kw_only, f.compare, f.repr) for f in fields(dc)
    ]
    assert rc.__match_args__ == dc.__match_args__
    # The real __init__ is compiled on the first instantiation; before it, a stand-in takes any arguments.
    with pytest.raises(TypeError) as got:
        rc()
    with pytest.raises(TypeError) as want:
        dc()
    assert str(got.value).split("__init__()")[1] == str(want.value).split("__init__()")[1]
    assert str(inspect.signature(rc)) == str(inspect.signature(dc))
    assert str(inspect.signature(rc.__init__)) == str(inspect.signature(dc.__init__))
    assert rc.__init__.__qualname__ == f"{rc.__qualname__}.__init__"


CALLS = [
    ((1,), {}),
    ((1, "t"), {"d": True}),
    ((), {"a": 2, "c": {"k": 1}}),
    ((1, "t", {"k": 2}), {"d": False}),
    ((), {}),  # a missing
    ((1, "t", {}, True), {}),  # d is keyword-only
    ((1,), {"a": 1}),  # a twice
    ((1,), {"z": 1}),  # no such field
]


@pytest.mark.parametrize("rounds", [1, records.COMPILE_AFTER + 2])
def test_bound_and_compiled_calls_give_what_dataclass_gives(rounds):
    """The stand-in that binds the first calls and the compiled __init__ after it agree with @dataclass."""
    rbase, _, _ = _family(record)  # fresh, so its first calls go through the stand-in
    for _ in range(rounds):
        for args, kwargs in CALLS:
            try:
                want: Any = asdict(DBase(*args, **kwargs))
            except TypeError as err:
                want = str(err).split("__init__()")[1]
            try:
                got: Any = asdict(rbase(*args, **kwargs))
            except TypeError as err:
                got = str(err).split("__init__()")[1]
            assert got == want, (args, kwargs)
    assert RPlain(1).y is not RPlain(1).y


def test_repr_equality_and_hash():
    d, r = DBase(1, "t", {"k": 1}, d=True), RBase(1, "t", {"k": 1}, d=True)
    assert repr(r) == repr(d).replace("DBase", "RBase") == "RBase(a=1, b='t', d=True)"
    assert (r == RBase(1, "t"), r == RBase(2, "t"), r != RBase(1, "t")) == (
        d == DBase(1, "t"),
        d == DBase(2, "t"),
        d != DBase(1, "t"),
    )
    assert hash(r) == hash(d) == hash((1, "t"))
    assert r.__eq__(d) is NotImplemented
    assert repr(RSub(1, e=5)) == repr(DSub(1, e=5)).replace("DSub", "RSub")
    assert (RSub(1, e=5) == RSub(1, e=6)) == (DSub(1, e=5) == DSub(1, e=6))  # Base's __eq__, inherited
    assert RPlain.__hash__ is object.__hash__ and DPlain.__hash__ is object.__hash__
    assert RPlain(1) != RPlain(1) and DPlain(1) != DPlain(1)


def test_eq_without_frozen_is_unhashable_as_in_dataclass():
    @dataclass
    class D:
        """Mutable and compared."""

        a: int

    @record
    class R:
        """Mutable and compared."""

        a: int

    assert D.__hash__ is None and R.__hash__ is None
    assert R(1) == R(1) and R(1) != R(2)


def test_frozen_refuses_assignment_and_deletion():
    for obj in (DBase(1), RBase(1), DSub(1, e=2), RSub(1, e=2)):
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'a'"):
            obj.a = 3  # type: ignore[misc]
        with pytest.raises(FrozenInstanceError, match="cannot delete field 'b'"):
            del obj.b  # type: ignore[misc]
        with pytest.raises(FrozenInstanceError, match="cannot assign to field 'other'"):
            obj.other = 1  # type: ignore[attr-defined]
    plain = RPlain(1)
    plain.x = 4
    assert plain.x == 4


def test_factories_replace_asdict_copy_and_pickle():
    assert RPlain(1).y is not RPlain(1).y
    given = RSub(1, "u", {"k": 2}, e=5)
    changed = replace(given, e=7, b="v")
    assert (changed.a, changed.b, changed.c, changed.e) == (1, "v", {"k": 2}, 7)
    assert asdict(given) == asdict(DSub(1, "u", {"k": 2}, e=5))
    assert astuple(given) == astuple(DSub(1, "u", {"k": 2}, e=5))
    assert copy.deepcopy(given) == given and copy.copy(given) == given
    assert pickle.loads(pickle.dumps(given)) == given


def test_refusals_match_dataclass():
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        @record
        class Order:
            """Defaults out of order."""

            a: int = 0
            b: int

    @record(frozen=True)
    class Frozen:
        """Frozen base."""

        a: int

    with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen one"):

        @record
        class Thawed(Frozen):
            """Unfrozen subclass."""

            b: int = 0


def _kvplan_records() -> list[type]:
    for info in pkgutil.walk_packages(kvplan.__path__, "kvplan."):
        if not info.name.endswith("__main__"):  # running it starts the command line
            importlib.import_module(info.name)
    return sorted(records._FROZEN, key=lambda c: f"{c.__module__}.{c.__qualname__}")


@pytest.mark.parametrize("cls", _kvplan_records(), ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_kvplan_record_takes_the_arguments_dataclass_would(cls):
    twin = make_dataclass(
        cls.__name__,
        [
            (f.name, f.type, field(default=f.default, default_factory=f.default_factory, kw_only=f.kw_only))
            for f in fields(cls)
        ],
    )
    with pytest.raises(TypeError):  # a call the stand-in cannot bind compiles the real __init__
        cls.__init__(object.__new__(cls), _no_such_field=1)
    assert str(inspect.signature(cls.__init__)) == str(inspect.signature(twin.__init__))


def test_kvplan_declares_its_dataclasses_with_record():
    """A plain @dataclass would compile its methods on every start of the command line again."""
    root = Path(kvplan.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                for deco in node.decorator_list:
                    target = deco.func if isinstance(deco, ast.Call) else deco
                    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                    if name == "dataclass":
                        found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    assert found == [], "declare these with kvplan.records.record: " + ", ".join(found)
