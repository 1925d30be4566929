"""`record`: a slotted dataclass, frozen by default, that is cheap to define and cheap to build.

Why not ``@dataclass(frozen=True, slots=True)`` itself: defining such a class compiles the source of six
methods (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``), about a
millisecond per class on the 2-core benchmark machine, and start-up defines some fifty of them before the
server answers: a quarter of what start-up spent importing. Most of those methods are not called before
health answers, many never in a given run. And its ``__init__`` stores each field through
``object.__setattr__`` (the class's own ``__setattr__`` refuses), about 0.1 µs a field, while the hot
paths build several such values per message.

A `record` is the same class with those costs moved:

- ``dataclasses.dataclass`` still collects the fields, adds the slots, ``__match_args__`` and
  ``__dataclass_fields__``, so ``fields``, ``replace``, ``asdict`` and ``astuple`` work as on any
  dataclass; it is only asked for none of the methods.
- ``__init__``, ``__eq__`` and ``__hash__`` (the ones hot paths call) are compiled on their first call
  and then replace themselves on the class, so from the second call on they cost exactly what
  compiled code costs. A frozen record's ``__init__`` sets each slot through its descriptor, held in a
  closure: half the cost of dataclass's own. It takes the same parameters with the same defaults, and
  runs ``__post_init__`` when the class has one.
- ``__repr__``, ``__setattr__``, ``__delattr__`` and the pickle state (``__getstate__``,
  ``__setstate__``) are plain closures: nothing to compile, and rarely called.

What dataclass promises still holds: a frozen record refuses assignment with ``FrozenInstanceError``
and hashes the tuple of its compared fields; equality compares those fields of two values of the same
class (``eq=False``: identity); a mutable one (``record(frozen=False)``) is unhashable unless
``eq=False``; ``repr`` lists the fields with ``repr=True``; methods the class body defines are kept.
Two things differ: ``inspect.signature`` shows ``(*args, **kwargs)`` until the first value is built, and
``__dataclass_params__`` reads as if none of the methods had been asked for (so a frozen dataclass
may not subclass a record). A class it cannot reproduce exactly (``InitVar``, ``ClassVar``,
keyword-only or non-init fields) is refused when it is defined rather than half-supported.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["record"]

T = TypeVar("T")


class _Factory:
    """Stands for "use the default factory" in an ``__init__``, shown as dataclass shows its own."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


_NO_VALUE = _Factory()


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, frozen: bool = True, eq: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(
    cls: type[T] | None = None, /, *, frozen: bool = True, eq: bool = True
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make ``cls`` a slotted dataclass, frozen unless told otherwise, whose methods compile when first called.

    ``eq=False`` leaves equality and hashing to ``object`` (identity), as dataclass's does.
    """
    if cls is None:
        return lambda cls: _build(cls, frozen, eq)
    return _build(cls, frozen, eq)


def _build(cls: type[T], frozen: bool, eq: bool) -> type[T]:
    own = cls.__dict__
    if frozen:
        for name in ("__setattr__", "__delattr__"):
            if name in own:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    own_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    own_eq = "__eq__" in own
    own_repr = "__repr__" in own
    if not own.get("__doc__"):  # dataclass would work one out with inspect.signature, which costs as much
        cls.__doc__ = cls.__name__
    cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False, slots=True)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    _check_supported(cls, fields)
    _lazy(cls, "__init__", lambda: _init_source(cls, fields, frozen))
    if eq and not own_eq:
        compared = tuple(f.name for f in fields if f.compare)
        _lazy(cls, "__eq__", lambda: _eq_source(compared))
    if eq and not own_hash:
        if frozen:
            hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
            _lazy(cls, "__hash__", lambda: _hash_source(hashed))
        else:  # a value that can change must not be a dict key: unhashable, as dataclass makes it
            cls.__hash__ = None  # type: ignore[assignment]
    if not own_repr:
        cls.__repr__ = _repr(tuple(f.name for f in fields if f.repr))  # type: ignore[method-assign]
    if frozen:
        _freeze(cls, tuple(f.name for f in fields))
    return cls


def _check_supported(cls: type[Any], fields: tuple[dataclasses.Field[Any], ...]) -> None:
    if len(cls.__dataclass_fields__) != len(fields):  # a ClassVar or an InitVar
        raise TypeError(f"record supports plain fields only: {cls.__qualname__}")
    if any(not f.init or f.kw_only is True for f in fields):
        raise TypeError(f"record supports positional init fields only: {cls.__qualname__}")


def _lazy(cls: type[Any], name: str, source: Callable[[], tuple[str, dict[str, Any]]]) -> None:
    """Install a method that compiles the real one from ``source`` on its first call and puts it in its place.

    The real method replaces this one on the class, so the compiled code is what every later call runs.
    Two threads calling it first at once both compile it, and the class ends up with one of the two.
    """

    def first_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        method = _compile(cls, name, *source())
        setattr(cls, name, method)
        return method(self, *args, **kwargs)

    first_call.__name__ = name
    first_call.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, first_call)


def _compile(cls: type[Any], name: str, body: str, cells: dict[str, Any]) -> Any:
    """The function ``name`` of ``cls`` from its ``body``; ``cells`` become closure cells (no global lookups)."""
    # The values it reads are parameters of an enclosing function, so the method reads them as closure
    # cells. The source holds only the class's own field names.
    source = f"def _make({', '.join(cells)}):\n{body}\n    return {name}\n"
    namespace: dict[str, Any] = {}
    exec(source, {}, namespace)
    method = namespace["_make"](**cells)
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    method.__module__ = cls.__module__
    return method


def _init_source(
    cls: type[Any], fields: tuple[dataclasses.Field[Any], ...], frozen: bool
) -> tuple[str, dict[str, Any]]:
    cells: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    parameters: list[str] = []
    lines: list[str] = []
    for index, field in enumerate(fields):
        name = field.name
        if frozen:  # through the slot's descriptor: the class's own __setattr__ refuses
            cells[f"_set_{index}"] = getattr(cls, name).__set__
        if field.default is not dataclasses.MISSING:
            cells[f"_default_{index}"] = field.default
            parameters.append(f"{name}=_default_{index}")
        elif field.default_factory is not dataclasses.MISSING:
            cells[f"_factory_{index}"] = field.default_factory
            parameters.append(f"{name}=_NO_VALUE")
            lines.append(f"if {name} is _NO_VALUE: {name} = _factory_{index}()")
        else:
            parameters.append(name)
        lines.append(f"_set_{index}(self, {name})" if frozen else f"self.{name} = {name}")
    if hasattr(cls, "__post_init__"):
        lines.append("self.__post_init__()")
    body = "\n".join(f"        {line}" for line in lines) or "        pass"
    return f"    def __init__(self, {', '.join(parameters)}):\n{body}", cells


def _eq_source(names: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    mine = "".join(f"self.{name}," for name in names)
    theirs = "".join(f"other.{name}," for name in names)
    return (
        "    def __eq__(self, other):\n"
        "        if other.__class__ is self.__class__:\n"
        f"            return ({mine}) == ({theirs})\n"
        "        return NotImplemented",
        {},
    )


def _hash_source(names: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    return f"    def __hash__(self):\n        return hash(({''.join(f'self.{name},' for name in names)}))", {}


def _repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _freeze(cls: type[Any], names: tuple[str, ...]) -> None:
    """Refuse assignment and deletion as a frozen dataclass does, and pickle through the slots."""
    fixed = frozenset(names)

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in fixed:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in fixed:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    def __getstate__(self: Any) -> list[Any]:
        return [getattr(self, name) for name in names]

    def __setstate__(self: Any, state: list[Any]) -> None:
        for name, value in zip(names, state, strict=False):
            object.__setattr__(self, name, value)

    for method in (__setattr__, __delattr__, __getstate__, __setstate__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)
