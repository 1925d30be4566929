"""Jackson's wording for a JSON document that does not parse, as SNS quotes it.

SNS parses FilterPolicy and RedrivePolicy attributes with Jackson and, when the text is not JSON,
answers ``<Attribute>: failed to parse JSON. <Jackson's message>``, e.g. for ``{invalid json}``::

    Unexpected character ('i' (code 105)): was expecting double-quote to start field name
     at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 2]

(recorded AWS responses: localstack's test_sns.snapshot.json, test_validate_set_sub_attributes and
test_subscribe_invalid_filter_policy). This module walks the text the way Jackson's reader does and
words the first syntax error it meets: an unexpected character is located *at* that character, an
unrecognized bare word *after* it, as Jackson's locations are. Errors it does not model (malformed
numbers and escapes, mismatched close markers) give None, and the caller keeps its plain wording.
"""

from __future__ import annotations

import re

__all__ = ["jackson_syntax_error", "unparsable_json"]

_LOCATION = (
    "[Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: {line}, column: {column}]"
)
_VALUE_LIST = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
_KEYWORDS = ("true", "false", "null")
_WHITESPACE = " \t\r\n"
_NUMBER_CHARS = frozenset(".eE0123456789+-")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class _Syntax(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Unmodelled(Exception):
    """A syntax error whose Jackson wording this module does not reproduce."""


def unparsable_json(attribute: str, text: str) -> str:
    """SNS's reason for an attribute whose value is not JSON: ``<attribute>: failed to parse JSON. <Jackson's>``."""
    detail = jackson_syntax_error(text)
    return f"{attribute}: failed to parse JSON." + (f" {detail}" if detail else "")


def jackson_syntax_error(text: str) -> str | None:
    """Jackson's message (with its location) for the first syntax error in ``text``; None if none or unmodelled."""
    reader = _Reader(text)
    try:
        reader.document()
    except _Syntax as error:
        return error.message
    except (_Unmodelled, RecursionError):
        return None
    return None


def _java_identifier_part(ch: str) -> bool:
    """Character.isJavaIdentifierPart for what a JSON document holds (letters, digits, ``_`` and ``$``)."""
    return ch.isalnum() or ch in "_$"


def _java_identifier_start(ch: str) -> bool:
    return ch.isalpha() or ch in "_$"


class _Reader:
    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line = 1
        self._line_start = 0

    # ---- locations and errors ----

    def _location(self, offset: int) -> str:
        column = _utf16(self._text[self._line_start : offset]) + 1
        return _LOCATION.format(line=self._line, column=column)

    def _unexpected(self, offset: int, comment: str) -> _Syntax:
        ch = self._text[offset]
        code = ord(ch)
        shown = f"'{ch}' (code {code})" if code > 31 else f"(CTRL-CHAR, code {code})"
        if code > 255:
            shown = f"'{ch}' (code {code} / 0x{code:x})"
        return _Syntax(f"Unexpected character ({shown}): {comment}\n at {self._location(offset)}")

    def _end_of_input(self, container: str, start: tuple[int, int]) -> _Syntax:
        line, column = start
        marker = _LOCATION.format(line=line, column=column)
        return _Syntax(
            f"Unexpected end-of-input: expected close marker for {container} (start marker at {marker})\n"
            f" at {self._location(len(self._text))}"
        )

    def _invalid_token(self, start: int) -> _Syntax:
        end = start
        while end < len(self._text) and _java_identifier_part(self._text[end]):
            end += 1
        word = self._text[start:end]
        return _Syntax(f"Unrecognized token '{word}': was expecting {_VALUE_LIST}\n at {self._location(end)}")

    # ---- scanning ----

    def _inside(self, container: str, start: tuple[int, int]) -> int:
        """The offset of the next token within an open ``container``; the text must not end there."""
        offset = self._skip_whitespace()
        if offset is None:
            raise self._end_of_input(container, start)
        return offset

    def _skip_whitespace(self) -> int | None:
        """Offset of the next significant character, or None at the end of the text."""
        text = self._text
        while self._pos < len(text) and text[self._pos] in _WHITESPACE:
            ch = text[self._pos]
            self._pos += 1
            if ch == "\n" or (ch == "\r" and text[self._pos : self._pos + 1] != "\n"):
                self._line += 1
                self._line_start = self._pos
        return self._pos if self._pos < len(text) else None

    def _start_marker(self) -> tuple[int, int]:
        return self._line, _utf16(self._text[self._line_start : self._pos]) + 1

    def document(self) -> None:
        offset = self._skip_whitespace()
        if offset is None:
            raise _Unmodelled  # "No content to map": SNS treats an empty policy as no policy
        self._value(offset)

    def _value(self, offset: int) -> None:
        ch = self._text[offset]
        if ch == "{":
            self._object()
        elif ch == "[":
            self._array()
        elif ch == '"':
            self._string()
        elif ch == "-" or ch.isdigit():
            self._number()
        elif ch in "tfn":
            self._keyword(offset)
        elif _java_identifier_start(ch):
            raise self._invalid_token(offset)
        else:
            raise self._unexpected(offset, f"expected a valid value {_VALUE_LIST}")

    def _object(self) -> None:
        marker = self._start_marker()
        self._pos += 1
        offset = self._inside("Object", marker)
        if self._text[offset] == "}":
            self._pos += 1
            return
        while True:
            if self._text[offset] != '"':
                raise self._unexpected(offset, "was expecting double-quote to start field name")
            self._string()
            offset = self._inside("Object", marker)
            if self._text[offset] != ":":
                raise self._unexpected(offset, "was expecting a colon to separate field name and value")
            self._pos += 1
            offset = self._inside("Object", marker)
            self._value(offset)
            offset = self._inside("Object", marker)
            if self._text[offset] == "}":
                self._pos += 1
                return
            if self._text[offset] != ",":
                raise self._unexpected(offset, "was expecting comma to separate Object entries")
            self._pos += 1
            offset = self._inside("Object", marker)

    def _array(self) -> None:
        marker = self._start_marker()
        self._pos += 1
        offset = self._inside("Array", marker)
        if self._text[offset] == "]":
            self._pos += 1
            return
        while True:
            self._value(offset)
            offset = self._inside("Array", marker)
            if self._text[offset] == "]":
                self._pos += 1
                return
            if self._text[offset] != ",":
                raise self._unexpected(offset, "was expecting comma to separate Array entries")
            self._pos += 1
            offset = self._inside("Array", marker)

    def _string(self) -> None:
        text = self._text
        pos = self._pos + 1
        while pos < len(text):
            ch = text[pos]
            if ch == '"':
                self._pos = pos + 1
                return
            if ch == "\\":
                pos += 2
                continue
            if ord(ch) < 32:
                raise _Unmodelled  # Jackson: "Illegal unquoted character ..."
            pos += 1
        raise _Unmodelled  # Jackson: "was expecting closing quote for a string value"

    def _number(self) -> None:
        match = _NUMBER.match(self._text, self._pos)
        end = match.end() if match else self._pos
        if end == self._pos or self._text[end : end + 1] in _NUMBER_CHARS:
            raise _Unmodelled  # Jackson words malformed numbers case by case
        self._pos = end

    def _keyword(self, offset: int) -> None:
        for word in _KEYWORDS:
            if self._text.startswith(word, offset):
                after = offset + len(word)
                if after < len(self._text) and _java_identifier_part(self._text[after]):
                    raise self._invalid_token(offset)
                self._pos = after
                return
        raise self._invalid_token(offset)


def _utf16(text: str) -> int:
    """Length in UTF-16 code units, the unit of Jackson's columns."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
