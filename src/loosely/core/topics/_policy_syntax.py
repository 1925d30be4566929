"""Reading a parsed filter policy the way SNS's rule compiler does, into a tree of keys and ``$or`` groups.

The walk follows the compiler's own order of reads, so that each syntax error is raised with the
message and the Jackson location AWS returns (see `_policy_source`). The result is a `Group`: the
AND of its entries, where an entry is a `Leaf` (one key path and its patterns) or an `Alternatives`
(a recognised ``$or``: the OR of several groups). Limits (keys, combinations, scope) are checked by
the caller on this tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

from loosely.core.frozen import record
from loosely.core.topics._policy_patterns import (
    AnythingBut,
    FieldMatcher,
    MatcherBuilder,
    NumericRange,
    PatternError,
    checked_comparable,
    cidr_range,
)
from loosely.core.topics._policy_source import (
    ARR_END,
    ARR_START,
    FALSE,
    FIELD,
    NULL,
    NUMBER,
    OBJ_END,
    OBJ_START,
    STRING,
    TRUE,
    Cursor,
    JsonValue,
    Token,
)

OR_KEY = "$or"
# Operator names; an "$or" array whose objects use one of them is an ordinary key to SNS.
RESERVED = frozenset(
    {"anything-but", "cidr", "equals-ignore-case", "exists", "numeric", "prefix", "suffix", "wildcard"}
)
_STRING_OPERATORS = ("prefix", "suffix", "equals-ignore-case")
_LITERALS: dict[str, bool | None] = {TRUE: True, FALSE: False, NULL: None}
T = TypeVar("T")


class PolicySyntaxError(Exception):
    """A rule-compiler error; ``reason`` is AWS's text (with the location when AWS gives one)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@record
class Leaf:
    path: str  # nested keys joined with "."
    depth: int  # 1 for a top-level key; nesting multiplies SNS's combination count
    count: int  # number of patterns in the key's array
    matcher: FieldMatcher


@record
class Alternatives:
    groups: tuple[Group, ...]


Group = tuple[Leaf | Alternatives, ...]


@record
class Tree:
    root: Group
    nested: bool  # some key's value is an object (only MessageBody scope allows that)


def read_policy(policy: JsonValue) -> Tree:
    """Compile ``policy`` (already parsed JSON) into a `Tree`, raising `PolicySyntaxError`."""
    reader = _Reader(Cursor(policy))
    if reader.cursor.next_token().kind != OBJ_START or not isinstance(policy, dict):
        reader.fail("Filter is not an object")
    root = reader.object(policy, prefix="", depth=1, inside_or=False)
    return Tree(root=root, nested=reader.nested)


def is_or_group(value: JsonValue) -> bool:
    """SNS's rule: ``$or`` means OR only over an array of at least two objects free of operator names."""
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(item, dict) and not RESERVED.intersection(item) for item in value)
    )


class _Reader:
    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.nested = False

    def fail(self, message: str) -> NoReturn:
        raise PolicySyntaxError(f"FilterPolicy: {message}{self.cursor.location()}")

    def fail_plain(self, message: str) -> NoReturn:
        """An error the compiler raises without a location (not a parse exception)."""
        raise PolicySyntaxError(f"FilterPolicy: {message}")

    def next_kind(self) -> str:
        return self.cursor.next_token().kind

    # -- objects and keys ---------------------------------------------------------------------

    def object(self, obj: dict[str, JsonValue], prefix: str, depth: int, inside_or: bool) -> Group:
        entries: list[Leaf | Alternatives] = []
        for name, value in obj.items():
            self.cursor.next_token()  # the field name (its value's first token comes with it)
            if name == OR_KEY and is_or_group(value):
                assert isinstance(value, list)
                entries.append(self.alternatives(value, prefix, depth))
                continue
            if inside_or and name in RESERVED:
                self.fail(f"{name} is Ruler reserved fieldName which cannot be used inside {OR_KEY}.")
            path = f"{prefix}.{name}" if prefix else name
            kind = self.next_kind()
            if kind == OBJ_START and isinstance(value, dict):
                self.nested = True
                entries.extend(self.object(value, path, depth + 1, inside_or))
            elif kind == ARR_START and isinstance(value, list):
                entries.append(self.leaf(value, path, depth))
            else:
                self.fail(f'"{name}" must be an object or an array')
        self.cursor.next_token()  # "}"
        if not obj:
            self.fail("Empty objects are not allowed")
        return tuple(entries)

    def alternatives(self, items: list[JsonValue], prefix: str, depth: int) -> Alternatives:
        self.next_kind()  # "["
        groups = []
        for item in items:
            self.next_kind()  # "{"
            assert isinstance(item, dict)
            groups.append(self.object(item, prefix, depth, inside_or=True))
        self.next_kind()  # "]"
        return Alternatives(tuple(groups))

    def leaf(self, items: list[JsonValue], path: str, depth: int) -> Leaf:
        builder = MatcherBuilder()
        for item in items:
            token = self.cursor.next_token()
            if token.kind == OBJ_START and isinstance(item, dict):
                self.match_expression(item, builder)
            elif token.kind == STRING:
                builder.add_string(self.cursor.text())
            elif token.kind == NUMBER:
                builder.add_number(_number(token))
            elif token.kind in _LITERALS:
                builder.literals.append(_LITERALS[token.kind])
            else:
                self.fail("Match value must be String, number, true, false, or null")
        self.cursor.next_token()  # "]"
        if not items:
            self.fail("Empty arrays are not allowed")
        return Leaf(path=path, depth=depth, count=len(items), matcher=builder.build())

    # -- match expressions ----------------------------------------------------------------------

    def match_expression(self, expression: dict[str, JsonValue], builder: MatcherBuilder) -> None:
        token = self.cursor.next_token()
        if token.kind != FIELD:
            self.fail("Match expression name not found")
        name = str(token.value)
        if name in _STRING_OPERATORS:
            self.string_operator(name, builder)
        elif name == "numeric":
            if self.next_kind() != ARR_START:
                self.fail("Value of numeric must be an array.")
            builder.ranges.append(self.numeric())
            self.expect_end("Too many elements in numeric expression")
        elif name == "anything-but":
            self.anything_but(expression[name], builder)
        elif name == "exists":
            kind = self.next_kind()
            if kind not in (TRUE, FALSE):
                self.fail("exists match pattern must be either true or false.")
            builder.exists.add(kind == TRUE)
            self.expect_end("Only one key allowed in match expression")
        elif name == "cidr":
            if self.next_kind() != STRING:
                self.fail("prefix match pattern must be a string")
            text = self.cursor.text()
            builder.addresses.append(self.plain(lambda: cidr_range(text)))
            self.expect_end("Only one key allowed in match expression")
        else:
            self.fail(f"Unrecognized match type {name}")

    def expect_end(self, message: str) -> None:
        if self.next_kind() != OBJ_END:
            self.fail(message)

    def plain(self, compile_pattern: Callable[[], T]) -> T:
        """Run a pattern compiler whose errors AWS reports without a location."""
        try:
            return compile_pattern()
        except PatternError as error:
            self.fail_plain(str(error))

    def string_operator(self, name: str, builder: MatcherBuilder) -> None:
        if self.next_kind() != STRING:
            self.fail(f"{name} match pattern must be a string")
        text = self.cursor.text()
        self.expect_end("Only one key allowed in match expression")
        if name == "prefix":
            builder.prefixes.append(text)
        elif name == "suffix":
            builder.suffixes.append(text)
        else:
            builder.ignore_case.add(text.lower())

    # -- numeric ------------------------------------------------------------------------------

    def numeric(self) -> NumericRange:
        token = self.cursor.next_token()
        if token.kind != STRING:
            self.fail(f"Invalid member in numeric match: {self.cursor.text()}")
        operator = self.cursor.text()
        token = self.cursor.next_token()
        if operator not in ("=", ">=", ">", "<=", "<"):
            self.fail(f"Unrecognized numeric range operator: {operator}")
        if token.kind != NUMBER:
            self.fail(f"Value of {'equals' if operator == '=' else operator} must be numeric")
        value = _number(token)
        if operator in (">", ">="):
            return self.lower_bounded(value, open_bottom=operator == ">")
        if self.next_kind() != ARR_END:
            self.fail("Too many elements in numeric expression")
        key = self.checked(value)
        if operator == "=":
            return NumericRange(key, False, key, False)
        return NumericRange(high=key, high_open=operator == "<")

    def lower_bounded(self, bottom: float, open_bottom: bool) -> NumericRange:
        token = self.cursor.next_token()
        if token.kind == ARR_END:
            return NumericRange(low=self.checked(bottom), low_open=open_bottom)
        if token.kind != STRING:
            self.fail(f"Bad value in numeric range: {self.cursor.text()}")
        operator = self.cursor.text()
        if operator not in ("<", "<="):
            self.fail(f"Bad numeric range operator: {operator}")
        token = self.cursor.next_token()
        if token.kind != NUMBER:
            self.fail(f"Value of {operator} must be numeric")
        top = _number(token)
        if self.next_kind() != ARR_END:
            self.fail("Too many terms in numeric range expression")
        try:
            return NumericRange.between(bottom, open_bottom, top, operator == "<")
        except PatternError as error:
            self.fail(str(error))

    def checked(self, value: float) -> int:
        try:
            return checked_comparable(value)
        except PatternError as error:
            self.fail(str(error))

    # -- anything-but ---------------------------------------------------------------------------

    def anything_but(self, argument: JsonValue, builder: MatcherBuilder) -> None:
        token = self.cursor.next_token()
        ignore_case = False
        if token.kind == OBJ_START:
            inner = self.cursor.next_token()
            if inner.kind != FIELD:
                self.fail("Anything-But expression name not found")
            operator = str(inner.value)
            if operator in ("prefix", "suffix"):
                builder.anything_but.append(self.anything_but_affix(operator))
                return
            if operator != "equals-ignore-case":
                self.fail(f"Unsupported anything-but pattern: {operator}")
            ignore_case = True
            token = self.cursor.next_token()
        if token.kind not in (ARR_START, STRING, NUMBER):
            self.fail("Value of anything-but must be an array or single string/number value.")
        if ignore_case:
            builder.anything_but.append(self.anything_but_ignore_case(token))
        else:
            builder.anything_but.append(self.anything_but_values(token))
        self.expect_end("Too many elements in numeric expression")
        if ignore_case:
            self.expect_end("Too many elements in numeric expression")

    def anything_but_affix(self, operator: str) -> AnythingBut:
        if self.next_kind() != STRING:
            self.fail(f"{operator} match pattern must be a string")
        text = self.cursor.text()
        if not text:
            self.fail(f"Null {operator} not allowed")
        self.expect_end("Only one key allowed in match expression")
        self.expect_end("Only one key allowed in match expression")
        return AnythingBut(kind=operator, affix=text)

    def anything_but_ignore_case(self, token: Token) -> AnythingBut:
        if token.kind != ARR_START:
            if token.kind != STRING:
                self.fail("Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.")
            return AnythingBut(kind="ignore-case", strings=frozenset({self.cursor.text().lower()}))
        values = set()
        while (token := self.cursor.next_token()).kind != ARR_END:
            if token.kind != STRING:
                self.fail("Inside anything-but/equals-ignore-case list, numberic|start|null|boolean is not supported.")
            values.add(self.cursor.text().lower())
        return AnythingBut(kind="ignore-case", strings=frozenset(values))

    def anything_but_values(self, token: Token) -> AnythingBut:
        if token.kind == STRING:
            return AnythingBut(kind="strings", strings=frozenset({self.cursor.text()}))
        if token.kind == NUMBER:
            number = _number(token)
            return AnythingBut(kind="numbers", keys=frozenset({self.plain(lambda: checked_comparable(number))}))
        strings: set[str] = set()
        keys: set[int] = set()
        while (token := self.cursor.next_token()).kind != ARR_END:
            if token.kind == STRING:
                strings.add(self.cursor.text())
            elif token.kind == NUMBER:
                keys.add(self.checked(_number(token)))
            else:
                self.fail("Inside anything but list, start|null|boolean is not supported.")
        if bool(strings) == bool(keys):
            self.fail("Inside anything but list, either all values are number or string, mixed type is not supported")
        if strings:
            return AnythingBut(kind="strings", strings=frozenset(strings))
        return AnythingBut(kind="numbers", keys=frozenset(keys))


def _number(token: Token) -> float:
    assert isinstance(token.value, int | float) and not isinstance(token.value, bool)
    try:
        return float(token.value)
    except OverflowError:  # an integer too large for a double, as Java would read it
        return float("inf") if token.value > 0 else float("-inf")
