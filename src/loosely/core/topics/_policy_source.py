"""The filter policy as SNS's rule compiler reads it: compact JSON, a token at a time, with error locations.

SNS parses a filter policy, writes it back as compact JSON, and hands that text to a streaming rule
compiler built on Jackson. Syntax errors therefore end with Jackson's location of the *compact* text,
e.g. ``\\n at [Source: (String)"{"key":[["value"]]}"; line: 1, column: 10]``, whatever spacing the
client sent. To reproduce those messages byte for byte, this module

* re-serialises the parsed policy the way Jackson writes a tree (no spaces, Java ``Double.toString``
  numbers, upper-case ``\\u00XX`` escapes), recording every token's span, and
* replays Jackson's pull-parser cursor over those tokens: strings are read lazily (the location sits
  just past the opening quote until the text is asked for), and after a field name the first token
  of its value is already consumed.

Nothing here knows filter-policy semantics; `_policy_syntax` drives the cursor.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from loosely.core.frozen import record

# Token kinds. A field token spans ``"name":`` (name and colon).
OBJ_START: Final = "{"
OBJ_END: Final = "}"
ARR_START: Final = "["
ARR_END: Final = "]"
FIELD: Final = "field"
STRING: Final = "string"
NUMBER: Final = "number"
TRUE: Final = "true"
FALSE: Final = "false"
NULL: Final = "null"

_SNIPPET_LIMIT = 500  # Jackson quotes at most this many UTF-16 units of the source in a location
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


@record
class Token:
    kind: str
    start: int  # offset of the token's first character in the compact text
    end: int  # offset just past the token
    value: JsonValue  # the Python value (field name for FIELD, None for punctuation)
    text: str  # what Jackson's getText() returns for it


def java_double(x: float) -> str:
    """``Double.toString(x)``: plain notation in [1e-3, 1e7), otherwise ``d.dddE±n``; shortest digits."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent = int(exponent) + len(digit_tuple) - len(digits)
    point = len(digits) - 1 + exponent  # power of ten of the first digit
    if -3 <= point < 7:
        if point >= 0:
            whole = digits[: point + 1].ljust(point + 1, "0")
            return f"{sign}{whole}.{digits[point + 1 :] or '0'}"
        return f"{sign}0.{'0' * (-point - 1)}{digits}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point}"


def _quote(text: str) -> str:
    """A JSON string literal as Jackson writes it: only quotes, backslashes and controls are escaped."""
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class _Writer:
    """Serialises a parsed policy compactly while recording the token spans."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0
        self.tokens: list[Token] = []

    def _emit(self, kind: str, literal: str, value: JsonValue, text: str) -> None:
        self.tokens.append(Token(kind, self.offset, self.offset + len(literal), value, text))
        self._raw(literal)

    def _raw(self, literal: str) -> None:
        self.parts.append(literal)
        self.offset += len(literal)

    def write(self, value: JsonValue) -> None:
        if isinstance(value, dict):
            self._emit(OBJ_START, "{", None, "{")
            for index, (name, item) in enumerate(value.items()):
                if index:
                    self._raw(",")
                self._emit(FIELD, _quote(name) + ":", name, name)
                self.write(item)
            self._emit(OBJ_END, "}", None, "}")
        elif isinstance(value, list):
            self._emit(ARR_START, "[", None, "[")
            for index, item in enumerate(value):
                if index:
                    self._raw(",")
                self.write(item)
            self._emit(ARR_END, "]", None, "]")
        else:
            self._scalar(value)

    def _scalar(self, value: JsonValue) -> None:
        if value is None:
            self._emit(NULL, "null", None, "null")
        elif value is True:
            self._emit(TRUE, "true", True, "true")
        elif value is False:
            self._emit(FALSE, "false", False, "false")
        elif isinstance(value, str):
            self._emit(STRING, _quote(value), value, value)
        else:
            assert isinstance(value, int | float)
            literal = str(value) if isinstance(value, int) else java_double(value)
            self._emit(NUMBER, literal, value, literal)


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Java's String.length() and of Jackson's columns."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _snippet(source: str) -> str:
    """Jackson's ``(String)"..."`` source description, cut at 500 UTF-16 units like Jackson does."""
    total = _utf16_len(source)
    if total <= _SNIPPET_LIMIT:
        return f'(String)"{source}"'
    units = source.encode("utf-16-le", "surrogatepass")[: 2 * _SNIPPET_LIMIT]
    head = units.decode("utf-16-le", "replace")  # a pair split at the cut becomes one replacement char
    return f'(String)"{head}"[truncated {total - _SNIPPET_LIMIT} chars]'


class Cursor:
    """Jackson's ``JsonParser`` over the compact policy: ``next_token``, ``text`` and ``location``.

    The location rules reproduced here are those AWS's messages show: a string value leaves the
    position just after its opening quote until ``text()`` is called; a field name also consumes the
    first token of its value (all of a number or literal, one character of a string or container).
    """

    def __init__(self, value: JsonValue) -> None:
        writer = _Writer()
        writer.write(value)
        self.source = "".join(writer.parts)
        self._tokens = writer.tokens
        self._next = 0
        self._position = 0
        self._current: Token | None = None
        self._after_field = False

    def next_token(self) -> Token:
        token = self._tokens[self._next]
        self._next += 1
        if self._after_field:  # the value was already read together with its field name
            self._after_field = False
        elif token.kind == FIELD:
            value = self._tokens[self._next]
            self._position = value.start + 1 if value.kind == STRING else value.end
            self._after_field = True
        else:
            self._position = token.start + 1 if token.kind == STRING else token.end
        self._current = token
        return token

    def text(self) -> str:
        """The current token's text; for a string this reads it to its closing quote."""
        token = self._current
        assert token is not None
        if token.kind == STRING:
            self._position = token.end
        return token.text

    def skip_children(self) -> None:
        """After a container start, move past its matching end (as ``JsonParser.skipChildren``)."""
        depth = 1
        while depth:
            kind = self.next_token().kind
            if kind in (OBJ_START, ARR_START):
                depth += 1
            elif kind in (OBJ_END, ARR_END):
                depth -= 1

    def location(self) -> str:
        """Jackson's ``\\n at [Source: ...; line: 1, column: N]`` suffix for an error raised now."""
        column = _utf16_len(self.source[: self._position]) + 1
        return f"\n at [Source: {_snippet(self.source)}; line: 1, column: {column}]"
