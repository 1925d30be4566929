"""quick_init keeps everything a frozen dataclass promises while building it faster."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import InitVar, dataclass, field

import pytest

from loosely.core.frozen import quick_init
from loosely.core.queues import models


@quick_init
@dataclass(frozen=True, slots=True)
class _Quick:
    number: int
    text: str = "t"
    items: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Plain:
    number: int
    text: str = "t"
    items: list[int] = field(default_factory=list)


def _shape(cls: type) -> list[tuple[str, inspect._ParameterKind, bool]]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in parameters]


def test_parameters_defaults_and_factories_are_the_dataclass_ones() -> None:
    assert _shape(_Quick) == _shape(_Plain)
    assert dataclasses.astuple(_Quick(1)) == dataclasses.astuple(_Plain(1)) == (1, "t", [])
    assert dataclasses.astuple(_Quick(2, text="x", items=[3])) == (2, "x", [3])
    assert _Quick(1).items is not _Quick(1).items
    with pytest.raises(TypeError):
        _Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick(1, "a", [], 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick(1, number=2)  # type: ignore[misc]


def test_the_value_stays_frozen_comparable_and_hashable() -> None:
    value = _Quick(1, "a", [])
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.number = 2  # type: ignore[misc]
    assert value == _Quick(1, "a", [])
    assert dataclasses.replace(value, number=5) == _Quick(5, "a", [])
    assert hash(models.MessageRef(1, 2)) == hash(models.MessageRef(row_id=1, receive_count=2))
    assert repr(models.MessageRef(1, 2)) == "MessageRef(row_id=1, receive_count=2)"


def test_every_model_gets_quick_init_with_its_fields() -> None:
    classes = [c for c in vars(models).values() if dataclasses.is_dataclass(c) and c.__module__ == models.__name__]
    assert models.MessageRef in classes and models.StoredMessage in classes
    for cls in classes:
        assert cls.__init__.__code__.co_freevars, f"{cls.__name__} has the generated __init__"
        names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert names == [f.name for f in dataclasses.fields(cls)]


def test_classes_it_cannot_reproduce_are_refused() -> None:
    @dataclass(slots=True)
    class Mutable:
        number: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        number: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        number: int
        extra: InitVar[int]

    @dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        number: int

    @dataclass(frozen=True, slots=True)
    class NotInit:
        number: int = field(init=False, default=0)

    for cls in (Mutable, PostInit, WithInitVar, KeywordOnly, NotInit):
        with pytest.raises(TypeError):
            quick_init(cls)
