"""`record` keeps everything a frozen, slotted dataclass promises, while costing less to define and to build."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar

import pytest

from loosely.core.frozen import record
from loosely.core.queues import models


@record
class _Record:
    number: int
    text: str = "t"
    items: list[int] = field(default_factory=list)
    note: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class _Plain:
    number: int
    text: str = "t"
    items: list[int] = field(default_factory=list)
    note: str = field(default="", compare=False, repr=False)


def _shape(cls: type) -> list[tuple[str, inspect._ParameterKind, str]]:
    parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    return [(p.name, p.kind, repr(p.default)) for p in parameters]


def _fresh() -> type[Any]:
    """A record class no value has been built of yet."""

    @record
    class Fresh:
        number: int
        text: str = "t"

    return Fresh


def test_defining_a_record_compiles_nothing_until_a_method_is_first_called() -> None:
    cls = _fresh()
    lazy = {name: cls.__dict__[name] for name in ("__init__", "__eq__", "__hash__")}
    assert all(method.__code__.co_name == "first_call" for method in lazy.values())
    value = cls(1)
    assert value == cls(1, "t") and hash(value) == hash((1, "t"))
    for name, method in lazy.items():  # each compiled itself and took its own place
        assert cls.__dict__[name] is not method and cls.__dict__[name].__code__.co_name == name


def test_parameters_defaults_and_factories_are_the_dataclass_ones() -> None:
    _Record(0)  # compiles the real __init__
    assert _shape(_Record) == _shape(_Plain)
    assert dataclasses.astuple(_Record(1)) == dataclasses.astuple(_Plain(1)) == (1, "t", [], "")
    assert dataclasses.astuple(_Record(2, text="x", items=[3])) == (2, "x", [3], "")
    assert _Record(1).items is not _Record(1).items
    with pytest.raises(TypeError):
        _Record()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Record(1, "a", [], "n", 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Record(1, number=2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        _fresh()()  # the first call checks its arguments too


def test_the_value_stays_frozen_comparable_hashable_and_shown_as_a_dataclass_is() -> None:
    value = _Record(1, "a", [], "note")
    plain = _Plain(1, "a", [], "note")
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.number = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del value.text
    with pytest.raises(AttributeError):
        value.other = 1  # type: ignore[attr-defined]  # slots: no room for anything else
    assert value == _Record(1, "a", [], "other note")  # compare=False fields are left out
    assert value != _Record(2, "a", [], "note") and value != plain  # type: ignore[comparison-overlap]
    assert (value == plain) is False and value.__eq__(plain) is NotImplemented  # type: ignore[comparison-overlap]
    assert dataclasses.replace(value, number=5) == _Record(5, "a", [], "note")
    assert hash(models.MessageRef(1, 2)) == hash(models.MessageRef(row_id=1, receive_count=2)) == hash((1, 2))
    assert repr(value) == repr(plain).replace("_Plain", "_Record") == "_Record(number=1, text='a', items=[])"
    assert repr(models.MessageRef(1, 2)) == "MessageRef(row_id=1, receive_count=2)"
    assert [f.name for f in dataclasses.fields(_Record)] == ["number", "text", "items", "note"]
    assert _Record.__match_args__ == _Plain.__match_args__


def test_copies_and_pickles_keep_the_fields() -> None:
    value = models.MessageRef(1, 2)
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.copy(value) == value and copy.deepcopy(_Record(1, items=[2])) == _Record(1, items=[2])


def test_a_repr_that_reaches_itself_stops() -> None:
    items: list[Any] = []
    value = _Record(1, items=items)
    items.append(value)
    assert repr(value) == "_Record(number=1, text='t', items=[...])"


def test_methods_the_class_defines_are_kept_and_post_init_runs() -> None:
    seen: list[int] = []

    @record
    class Own:
        number: int

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return 7

        def __repr__(self) -> str:
            return "mine"

        def __post_init__(self) -> None:
            seen.append(self.number)

    assert Own(1) == Own(2) and hash(Own(1)) == 7 and repr(Own(1)) == "mine"
    assert seen == [1, 2, 1, 1]


def test_every_model_is_a_record_with_its_fields() -> None:
    classes: list[type[Any]] = [
        c
        for c in vars(models).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == models.__name__
    ]
    assert models.MessageRef in classes and models.StoredMessage in classes
    for cls in classes:
        assert cls.__dict__["__setattr__"].__module__ == record.__module__, f"{cls.__name__} is not a record"
        required = [f.name for f in dataclasses.fields(cls) if f.default is f.default_factory is dataclasses.MISSING]
        cls(*range(len(required)))  # compiles the real __init__
        names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert names == [f.name for f in dataclasses.fields(cls)]
        assert cls.__init__.__code__.co_freevars, f"{cls.__name__} has no slot-setting __init__"


def test_classes_it_cannot_reproduce_are_refused() -> None:
    with pytest.raises(TypeError):

        @record
        class WithInitVar:
            number: int
            extra: InitVar[int]

    with pytest.raises(TypeError):

        @record
        class WithClassVar:
            number: int
            shared: ClassVar[int] = 0

    with pytest.raises(TypeError):

        @record
        class KeywordOnly:
            number: int = field(kw_only=True)

    with pytest.raises(TypeError):

        @record
        class NotInit:
            number: int = field(init=False, default=0)

    with pytest.raises(TypeError):

        @record
        class OwnSetattr:
            number: int

            def __setattr__(self, name: str, value: object) -> None:
                pass


def test_a_mutable_record_is_a_slotted_dataclass_that_can_change() -> None:
    @record(frozen=False)
    class Mutable:
        number: int
        items: list[int] = field(default_factory=list)

    @record(frozen=False, eq=False)
    class ByIdentity:
        number: int

    @dataclass(slots=True)
    class Plain:
        number: int
        items: list[int] = field(default_factory=list)

    value = Mutable(1)
    value.number = 2
    assert value == Mutable(2, []) and repr(value).endswith(".Mutable(number=2, items=[])")
    assert _shape(Mutable) == _shape(Plain) and Mutable.__hash__ is None is Plain.__hash__
    with pytest.raises(AttributeError):
        value.other = 1
    same = ByIdentity(1)
    assert same == same and same != ByIdentity(1) and hash(same) == object.__hash__(same)
