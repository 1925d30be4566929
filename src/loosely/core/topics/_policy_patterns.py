"""What one policy key accepts, compiled for cheap matching: `FieldMatcher` and its parts.

A message field (an attribute, or a leaf path of the body) carries zero or more values: ``str``,
``float`` (every JSON or attribute number), ``True``/``False`` or ``None`` (JSON null). A key's
list of patterns is an OR; `FieldMatcher.matches` answers it for all the values of one field with
set look-ups wherever the patterns allow.

Numbers compare as SNS documents them: within ±1e9, to five decimal places. A number is turned
into an integer key (``(x + 1e9) * 1e5``, truncated), so ``300``, ``300.0`` and ``3.0e2`` are one
key and ranges are integer comparisons. Values outside ±1e9 never match a numeric pattern.

Strings that are IP address literals also match as addresses, as SNS's rule engine does: a plain
pattern ``"10.0.0.1"`` is a one-address range, and ``{"cidr": ...}`` a range from the given address
(not masked) to that address with all host bits set.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import field

from loosely.core.frozen import record

Value = str | float | bool | None

NUMERIC_LIMIT = 1e9
_SCALE = 1e5
BOUNDS_MESSAGE = "Value must be between -1.0E9 and 1.0E9, inclusive"
_MASK_BITS = re.compile(r"[+-]?[0-9]+")


class PatternError(ValueError):
    """A pattern value SNS rejects; ``str(error)`` is AWS's reason."""


def comparable(x: float) -> int | None:
    """The integer key of a number within ±1e9 (five decimals kept), else None."""
    if -NUMERIC_LIMIT <= x <= NUMERIC_LIMIT:
        return int((x + NUMERIC_LIMIT) * _SCALE)
    return None


def checked_comparable(x: float) -> int:
    key = comparable(x)
    if key is None:
        raise PatternError(BOUNDS_MESSAGE)
    return key


@record
class NumericRange:
    """A numeric interval over comparable keys; a missing bound is unbounded."""

    low: int | None = None
    low_open: bool = False
    high: int | None = None
    high_open: bool = False

    @classmethod
    def between(cls, bottom: float, open_bottom: bool, top: float, open_top: bool) -> NumericRange:
        if bottom >= top:
            raise PatternError("Bottom must be less than top")
        return cls(checked_comparable(bottom), open_bottom, checked_comparable(top), open_top)

    def contains(self, key: int) -> bool:
        if self.low is not None and (key <= self.low if self.low_open else key < self.low):
            return False
        return self.high is None or (key < self.high if self.high_open else key <= self.high)


def ip_literal(text: str) -> tuple[int, int] | None:
    """``(bits, address)`` when ``text`` is an IPv4 or IPv6 literal; IPv4-mapped IPv6 counts as IPv4."""
    if not text or len(text) > 45 or "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return 32, int(address.ipv4_mapped)
    return address.max_prefixlen, int(address)


def cidr_range(text: str) -> tuple[int, int, int]:
    """``(bits, low, high)`` for a ``cidr`` pattern, validated with AWS's messages."""
    parts = text.split("/")
    while parts and not parts[-1]:  # Java's String.split drops trailing empty strings
        parts.pop()
    if len(parts) != 2:
        raise PatternError("Malformed CIDR, one '/' required")
    if not _MASK_BITS.fullmatch(parts[1]) or not -(2**31) <= int(parts[1]) < 2**31:
        raise PatternError("Malformed CIDR, mask bits must be an integer")
    mask = int(parts[1])
    if mask < 0:
        raise PatternError("Malformed CIDR, mask bits must not be negative")
    address = ip_literal(parts[0])
    if address is None:
        raise PatternError(f"Nonstandard IP address: {parts[0]}")
    bits, low = address
    if mask >= bits:
        raise PatternError(f"IPv{4 if bits == 32 else 6} mask bits must be < {bits}")
    return bits, low, low | ((1 << (bits - mask)) - 1)


@record
class AnythingBut:
    """``anything-but``: matches any non-null value except those it names.

    ``kind`` is ``strings`` (exact strings), ``numbers`` (comparable keys), ``prefix``, ``suffix``
    or ``ignore-case`` (lower-cased strings). Values of another type than the excluded ones match.
    """

    kind: str
    strings: frozenset[str] = frozenset()
    keys: frozenset[int] = frozenset()
    affix: str = ""

    def accepts(self, value: Value) -> bool:
        if value is None:
            return False
        if isinstance(value, str):
            return self._accepts_string(value)
        if self.kind == "numbers" and isinstance(value, float) and not isinstance(value, bool):
            return comparable(value) not in self.keys
        return True

    def _accepts_string(self, value: str) -> bool:
        if self.kind == "strings":
            return value not in self.strings
        if self.kind == "prefix":
            return not value.startswith(self.affix)
        if self.kind == "suffix":
            return not value.endswith(self.affix)
        if self.kind == "ignore-case":
            return value.lower() not in self.strings
        return True


@record(frozen=False)
class MatcherBuilder:
    """Collects one key's patterns while the policy is read; `build` freezes them."""

    strings: set[str] = field(default_factory=set)
    keys: set[int] = field(default_factory=set)
    wide_numbers: set[float] = field(default_factory=set)
    literals: list[bool | None] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    suffixes: list[str] = field(default_factory=list)
    ignore_case: set[str] = field(default_factory=set)
    ranges: list[NumericRange] = field(default_factory=list)
    addresses: list[tuple[int, int, int]] = field(default_factory=list)
    anything_but: list[AnythingBut] = field(default_factory=list)
    exists: set[bool] = field(default_factory=set)

    def add_string(self, text: str) -> None:
        address = ip_literal(text)
        if address is None:
            self.strings.add(text)
        else:
            self.addresses.append((address[0], address[1], address[1]))

    def add_number(self, number: float) -> None:
        key = comparable(number)
        if key is None:
            self.wide_numbers.add(number)  # beyond ±1e9 only the same literal number matches
        else:
            self.keys.add(key)

    def build(self) -> FieldMatcher:
        return FieldMatcher(
            strings=frozenset(self.strings),
            keys=frozenset(self.keys),
            wide_numbers=frozenset(self.wide_numbers),
            literals=tuple(self.literals),
            prefixes=tuple(self.prefixes),
            suffixes=tuple(self.suffixes),
            ignore_case=frozenset(self.ignore_case),
            ranges=tuple(self.ranges),
            addresses=tuple(self.addresses),
            anything_but=tuple(self.anything_but),
            exists_true=True in self.exists,
            exists_false=False in self.exists,
            string_extras=bool(self.prefixes or self.suffixes or self.ignore_case or self.addresses),
        )


@record
class FieldMatcher:
    """The compiled OR of one policy key's patterns."""

    strings: frozenset[str]
    keys: frozenset[int]
    wide_numbers: frozenset[float]
    literals: tuple[bool | None, ...]
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    ignore_case: frozenset[str]
    ranges: tuple[NumericRange, ...]
    addresses: tuple[tuple[int, int, int], ...]
    anything_but: tuple[AnythingBut, ...]
    exists_true: bool
    exists_false: bool
    string_extras: bool  # prefixes, suffixes, ignore-case or addresses to try after the exact set

    def matches(self, values: Sequence[Value]) -> bool:
        """Whether a field with these values (none = the field is absent) satisfies the key."""
        if self.exists_true or self.exists_false:
            present = any(value is not None for value in values)
            if (present and self.exists_true) or (not present and self.exists_false):
                return True
        accepts = self._accepts
        for value in values:  # noqa: SIM110 - plain loops on the per-message hot path (no generator frames)
            if accepts(value):
                return True
        return False

    def _accepts(self, value: Value) -> bool:
        kind = type(value)
        if kind is str:
            assert isinstance(value, str)
            if value in self.strings or (self.string_extras and self._accepts_string(value)):
                return True
        elif kind is float:
            assert isinstance(value, float)
            if self._accepts_number(value):
                return True
        elif value in self.literals:  # True, False or None; `in` compares by identity first
            return True
        for pattern in self.anything_but:  # noqa: SIM110 - hot path
            if pattern.accepts(value):
                return True
        return False

    def _accepts_string(self, value: str) -> bool:
        if any(value.startswith(prefix) for prefix in self.prefixes):
            return True
        if any(value.endswith(suffix) for suffix in self.suffixes):
            return True
        if self.ignore_case and value.lower() in self.ignore_case:
            return True
        if self.addresses:
            address = ip_literal(value)
            if address is not None:
                bits, number = address
                return any(b == bits and low <= number <= high for b, low, high in self.addresses)
        return False

    def _accepts_number(self, value: float) -> bool:
        key = comparable(value)
        if key is None:
            return value in self.wide_numbers
        if key in self.keys:
            return True
        for numeric_range in self.ranges:  # noqa: SIM110 - hot path
            if numeric_range.contains(key):
                return True
        return False
