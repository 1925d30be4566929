"""A cheaper ``__init__`` for frozen, slotted dataclasses built on every request.

A frozen dataclass's generated ``__init__`` stores each field through ``object.__setattr__``
(looked up per field, since the class's own ``__setattr__`` refuses), about 0.1 µs a field; the
hot paths build several such values per message. `quick_init` replaces that ``__init__`` by one
that calls each slot's descriptor directly, held in a closure, which halves the cost. Everything
else stays what ``dataclass`` made: the class is still frozen (assignment raises
``FrozenInstanceError``), and equality, hashing, ``repr``, ``dataclasses.replace`` and
``fields`` are untouched. The replacement takes the same parameters with the same defaults; a
class it cannot reproduce exactly (``__post_init__``, ``InitVar``, keyword-only or non-init
fields) is refused at import time rather than half-supported.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_NO_VALUE = object()  # stands for "use the default factory", as in dataclass's own __init__


def quick_init(cls: type[T]) -> type[T]:
    """Give a frozen, slotted dataclass an ``__init__`` that sets its slots directly."""
    _check_supported(cls)
    cells: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    parameters: list[str] = []
    lines: list[str] = []
    for index, field in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        name = field.name
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
        lines.append(f"_set_{index}(self, {name})")
    # The setters and defaults are parameters of an enclosing function, so the __init__ reads
    # them as closure cells: no global or attribute lookup per field.
    body = "\n".join(f"        {line}" for line in lines) or "        pass"
    source = (
        f"def _make({', '.join(cells)}):\n"
        f"    def __init__(self, {', '.join(parameters)}):\n"
        f"{body}\n"
        f"    return __init__\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, {}, namespace)  # the source holds only the class's own field names
    init = namespace["_make"](**cells)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _check_supported(cls: type[Any]) -> None:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"quick_init needs a frozen dataclass with slots: {cls.__qualname__}")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"quick_init does not run __post_init__: {cls.__qualname__}")
    fields = dataclasses.fields(cls)
    if set(cls.__dataclass_fields__) != {f.name for f in fields}:  # a ClassVar or an InitVar
        raise TypeError(f"quick_init supports plain fields only: {cls.__qualname__}")
    if any(not f.init or f.kw_only is True for f in fields):
        raise TypeError(f"quick_init supports positional init fields only: {cls.__qualname__}")
