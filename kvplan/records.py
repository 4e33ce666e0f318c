"""``@record``: kvplan's dataclasses, without compiling their methods on every start.

``@dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and (frozen) ``__setattr__`` / ``__delattr__`` for each class it
decorates and compiles it, about a tenth of a millisecond a method; for the
fifty-odd dataclasses a ``kvplan plan`` imports that was two thirds of the
time its own modules took to import.

``@record(...)`` takes ``@dataclass``'s ``frozen``, ``eq``, ``repr`` and
``kw_only`` and makes a class that behaves the same: ``dataclasses.fields``,
``replace`` and ``asdict`` see its fields, its constructor takes the same
arguments (and refuses the same calls with the same messages), its repr,
equality and hash are those ``@dataclass`` would generate, and a frozen record
refuses assignment with ``FrozenInstanceError``.  What differs is how the work
is done: ``dataclass`` itself collects the fields and is asked to generate
nothing; repr, equality, hash and the frozen guard are closures over the field
names; and ``__init__`` starts as a stand-in that binds the arguments of its
first few calls itself and then compiles the real one, so a class built only a
few times in a command is never compiled.  Type checkers see
``dataclasses.dataclass``.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from typing import TYPE_CHECKING, Any

__all__ = ["record"]


def _repr_for(names: tuple[str, ...]) -> Callable[[Any], str]:
    """``ClassName(field=value, ...)`` over ``names``, as ``@dataclass`` writes a class's repr."""

    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _eq_for(names: tuple[str, ...]) -> Callable[[Any, object], bool]:
    """Equal when of the same class and equal in ``names`` (the compared fields of the class
    ``@dataclass`` wrote it for, which a subclass with ``eq=False`` keeps)."""

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)
        return NotImplemented

    return __eq__


def _hash_for(names: tuple[str, ...]) -> Callable[[Any], int]:
    """The hash of the tuple of ``names`` (the hashed fields), as ``@dataclass`` hashes a frozen class."""

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in names))

    return __hash__


_FROZEN: dict[type, bool] = {}


class _HasFactory:
    """The default of a parameter whose field has a ``default_factory``."""

    def __repr__(self) -> str:
        return "<factory>"


_HAS_FACTORY = _HasFactory()


def _frozen_guards(cls: type, names: tuple[str, ...]) -> tuple[Callable[..., None], Callable[..., None]]:
    """``__setattr__`` and ``__delattr__`` of a frozen record, as ``@dataclass(frozen=True)`` has them."""

    def __setattr__(self: Any, name: str, value: object) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]

    for fn in (__setattr__, __delattr__):
        fn.__qualname__ = f"{cls.__qualname__}.{fn.__name__}"
    return __setattr__, __delattr__


def _init_source(cls: type, frozen: bool) -> tuple[str, dict[str, Any]]:
    """The source of ``cls.__init__`` and the names it reads."""
    flds = fields(cls)  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"__record_set": object.__setattr__, "__record_factory": _HAS_FACTORY}
    params: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    self_name = "__record_self" if any(f.name == "self" for f in flds) else "self"
    for f in flds:
        value = f.name
        if f.default is not MISSING:
            namespace[f"__record_default_{f.name}"] = f.default
            param = f"{f.name}=__record_default_{f.name}"
        elif f.default_factory is not MISSING:
            namespace[f"__record_make_{f.name}"] = f.default_factory
            param = f"{f.name}=__record_factory"
            value = f"__record_make_{f.name}() if {f.name} is __record_factory else {f.name}"
        else:
            param = f.name
        (keyword if f.kw_only else params).append(param)
        if frozen:
            body.append(f"  __record_set({self_name}, {f.name!r}, {value})")
        else:
            body.append(f"  {self_name}.{f.name} = {value}")
    signature = [self_name, *params, *(["*", *keyword] if keyword else [])]
    source = f"def __init__({', '.join(signature)}):\n" + ("\n".join(body) or "  pass") + "\n"
    return source, namespace


def _check_init_order(flds: tuple[Any, ...]) -> None:
    """Refuse a positional field without a default after one with, as ``@dataclass`` does."""
    seen_default = False
    for f in flds:
        if f.kw_only:
            continue
        if f.default is not MISSING or f.default_factory is not MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")


# Calls a record's stand-in __init__ serves before the real one is compiled: most records
# are built a few times a command, and binding their arguments costs less than compiling.
COMPILE_AFTER = 16


_ABSENT = object()


def _binder(cls: type) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any] | None]:
    """A function giving every field's value, in field order, for a call with ``args`` and
    ``kwargs``, or None unless the call is plain (no positional field given twice, no unknown
    name, nothing required left out)."""
    flds = fields(cls)  # type: ignore[arg-type]
    positional = tuple(f.name for f in flds if not f.kw_only)
    plan = [
        (f.name, f.default is MISSING, f.default if f.default is not MISSING else f.default_factory)
        for f in flds
    ]

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        if len(args) > len(positional):
            return None
        given = dict(zip(positional, args, strict=False))
        if kwargs:
            if not given.keys().isdisjoint(kwargs):
                return None
            given.update(kwargs)
        values = {}
        for name, no_default, default in plan:
            value = given.pop(name, _ABSENT)
            if value is _ABSENT:
                if default is MISSING:
                    return None
                value = default() if no_default else default
            values[name] = value
        return None if given else values

    return bind


def _lazy_init(cls: type, frozen: bool) -> Callable[..., None]:
    """A stand-in ``__init__``: it binds the arguments itself for the first plain calls, then
    compiles the real one and hands every later call over to it (the real one also answers any
    call the stand-in cannot bind, with the error ``@dataclass``'s would give)."""
    calls = 0
    bind: Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any] | None] | None = None

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls, bind
        calls += 1
        if calls <= COMPILE_AFTER:
            bind = bind or _binder(cls)
            values = bind(args, kwargs)
            if values is not None:
                if frozen or type(self).__setattr__ is object.__setattr__:
                    # what assigning each field in turn does, when no __setattr__ of a class intervenes
                    self.__dict__.update(values)
                else:
                    for name, value in values.items():
                        setattr(self, name, value)
                return
        source, namespace = _init_source(cls, frozen)
        exec(source, namespace)  # source _init_source wrote from the fields
        real = namespace["__init__"]
        real.__qualname__ = f"{cls.__qualname__}.__init__"
        real.__annotations__ = {f.name: f.type for f in fields(cls)} | {"return": None}  # type: ignore[arg-type]
        type.__setattr__(cls, "__init__", real)
        real(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _check_frozen_bases(cls: type, frozen: bool) -> None:
    """Refuse mixing frozen and unfrozen records in one hierarchy, as ``@dataclass`` does."""
    bases = [_FROZEN[b] for b in cls.__mro__[1:] if b in _FROZEN]
    if bases and any(bases) and not frozen:
        raise TypeError("cannot inherit non-frozen dataclass from a frozen one")
    if bases and not all(bases) and frozen:
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")


def _make_record(cls: type, frozen: bool, eq: bool, repr: bool, kw_only: bool) -> type:
    own = cls.__dict__
    if not own.get("__doc__"):
        raise TypeError(f"{cls.__qualname__}: a record says what it holds in a docstring")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__qualname__}: __post_init__ is not supported by @record")
    _check_frozen_bases(cls, frozen)
    class_hash = own.get("__hash__", MISSING)
    explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in own))
    had = {name: name in own for name in ("__init__", "__repr__", "__eq__", "__setattr__", "__delattr__")}
    # Collect the fields (defaults, kw_only, __match_args__) and generate nothing.
    dataclass(cls, init=False, repr=False, eq=False, kw_only=kw_only)
    flds = fields(cls)  # type: ignore[arg-type]
    if not all(f.init for f in flds):
        raise TypeError(f"{cls.__qualname__}: field(init=False) is not supported by @record")
    _check_init_order(flds)
    if not had["__init__"]:
        type.__setattr__(cls, "__init__", _lazy_init(cls, frozen))
    for name, fn in (("__repr__", repr and _repr_for), ("__eq__", eq and _eq_for)):
        if fn and not had[name]:
            wanted = tuple(f.name for f in flds if (f.repr if name == "__repr__" else f.compare))
            fn_made = fn(wanted)
            fn_made.__qualname__ = f"{cls.__qualname__}.{name}"
            type.__setattr__(cls, name, fn_made)
    if frozen:
        if had["__setattr__"] or had["__delattr__"]:
            name = "__setattr__" if had["__setattr__"] else "__delattr__"
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
        setter, deleter = _frozen_guards(cls, tuple(f.name for f in flds))
        type.__setattr__(cls, "__setattr__", setter)
        type.__setattr__(cls, "__delattr__", deleter)
    if eq and not explicit_hash:
        hashed = tuple(f.name for f in flds if (f.compare if f.hash is None else f.hash))
        type.__setattr__(cls, "__hash__", _hash_for(hashed) if frozen else None)
    _FROZEN[cls] = frozen
    return cls


if TYPE_CHECKING:
    from dataclasses import dataclass as record
else:

    def record(cls=None, /, *, frozen=False, eq=True, repr=True, kw_only=False):
        """``@dataclass`` with ``frozen``, ``eq``, ``repr`` and ``kw_only``, its methods made without compiling at import."""

        def wrap(cls):
            return _make_record(cls, frozen, eq, repr, kw_only)

        return wrap if cls is None else wrap(cls)
