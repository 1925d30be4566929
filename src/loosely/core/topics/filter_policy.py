"""SNS subscription filter policies: parsed and validated once, then matched cheaply per message.

`parse_filter_policy` validates a policy the way SNS does and returns a `FilterPolicy`, or raises
`InvalidFilterPolicy` with AWS's message. The compiled policy is a disjunction of *rules* (one per
combination of ``$or`` branches), each a conjunction of key paths with a compiled `FieldMatcher`:

* ``MessageAttributes`` scope: keys are attribute names; ``String`` and ``Number`` attributes carry
  one value, ``String.Array`` (and ``Number.Array``) a JSON array whose elements match one by one,
  and ``Binary`` attributes are invisible. A message without (visible) attributes matches no
  policy, which is what makes ``{"exists": false}`` need at least one attribute.
* ``MessageBody`` scope: the body must be a JSON object. Nested keys are joined with ``.`` on both
  sides (so ``{"a": {"b": ...}}``, ``{"a.b": ...}`` and a body ``{"a.b": ...}`` meet), and a key
  inside an array takes the values of every element; a field matches when any value does.

To fan one message out to many subscriptions, prepare its fields once (`MessageFields`) and call
`FilterPolicy.matches` per subscription.

Validation follows AWS: syntax errors carry the rule compiler's Jackson location of the compact
policy (see `_policy_source`); then nesting is refused in ``MessageAttributes`` scope, each rule may
use at most five keys, and the *combinations* (for each ``$or`` expansion, the product over its keys
of values count times nesting depth, summed over expansions) may not exceed 150.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Final, Literal, Protocol

from loosely.core.errors import InvalidParameter
from loosely.core.frozen import record
from loosely.core.topics._policy_json import unparsable_json
from loosely.core.topics._policy_patterns import FieldMatcher, Value
from loosely.core.topics._policy_source import JsonValue
from loosely.core.topics._policy_syntax import Alternatives, Group, Leaf, PolicySyntaxError, read_policy

FilterPolicyScope = Literal["MessageAttributes", "MessageBody"]
ATTRIBUTES_SCOPE: Final = "MessageAttributes"
BODY_SCOPE: Final = "MessageBody"
MAX_POLICY_BYTES = 256 * 1024
MAX_KEYS = 5
MAX_COMBINATIONS = 150

PublishedAttribute = tuple[str, str | bytes]  # (DataType, value) as published
Rule = tuple[tuple[str, FieldMatcher], ...]


class AttributeLike(Protocol):
    """Any message attribute record: SQS's ``MessageAttributeValue``, SNS's published attribute, ..."""

    @property
    def data_type(self) -> str: ...

    @property
    def string_value(self) -> str | None: ...

    @property
    def binary_value(self) -> bytes | None: ...


class InvalidFilterPolicy(InvalidParameter):
    """A filter policy (or scope) SNS rejects. ``reason`` is the text after ``Invalid parameter: ``.

    SetSubscriptionAttributes reports ``Invalid parameter: <reason>``; Subscribe, where the policy
    arrives in the Attributes map, reports ``Invalid parameter: Attributes Reason: <reason>``
    (`in_attributes`).
    """

    def __init__(self, reason: str, context: str = "") -> None:
        super().__init__(f"Invalid parameter: {context}{reason}")
        self.reason = reason

    def in_attributes(self) -> InvalidFilterPolicy:
        """The same error as Subscribe words it."""
        return InvalidFilterPolicy(self.reason, context="Attributes Reason: ")


@record
class MessageFields:
    """A message's values by key path, prepared once and matched against many policies.

    ``values`` is None for a body that is not a JSON object: no policy matches it.
    """

    values: Mapping[str, Sequence[Value]] | None

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, PublishedAttribute]) -> MessageFields:
        values: dict[str, list[Value]] = {}
        for name, (data_type, raw) in attributes.items():
            base, _, label = data_type.partition(".")
            if base not in ("String", "Number") or isinstance(raw, bytes):
                continue  # Binary attributes are never compared
            if label == "Array":
                values[name] = _array_values(raw)
            elif base == "Number":
                values[name] = [_attribute_number(raw)]
            else:
                values[name] = [raw]
        return cls(values)

    @classmethod
    def from_attribute_values(cls, attributes: Mapping[str, AttributeLike]) -> MessageFields:
        """From attribute records with ``data_type``, ``string_value`` and ``binary_value``."""
        return cls.from_attributes(
            {
                name: (a.data_type, a.string_value if a.string_value is not None else a.binary_value or b"")
                for name, a in attributes.items()
            }
        )

    @classmethod
    def from_envelope_attributes(cls, attributes: Mapping[str, Mapping[str, str]]) -> MessageFields:
        """From the ``{name: {"Type", "Value"}}`` form SNS envelopes (and the outbox) carry."""
        return cls.from_attributes({name: (a["Type"], a["Value"]) for name, a in attributes.items()})

    @classmethod
    def from_body(cls, body: str) -> MessageFields:
        try:
            document = _loads(body)
        except (ValueError, RecursionError):
            return cls(None)
        if not isinstance(document, dict):
            return cls(None)
        values: dict[str, list[Value]] = {}
        _flatten_object(document, "", values)
        return cls(values)


@record
class FilterPolicy:
    """A compiled filter policy. No rules means no filtering: every message matches."""

    scope: FilterPolicyScope
    rules: tuple[Rule, ...]

    @property
    def matches_everything(self) -> bool:
        return not self.rules

    def matches(self, fields: MessageFields) -> bool:
        if not self.rules:
            return True
        values = fields.values
        if values is None or (not values and self.scope == ATTRIBUTES_SCOPE):
            return False  # not a JSON object; or no visible attributes, which even {"exists": false} needs
        empty: tuple[Value, ...] = ()
        for rule in self.rules:  # plain loops: this runs per message and subscription
            for path, matcher in rule:
                if not matcher.matches(values.get(path, empty)):
                    break
            else:
                return True
        return False

    def matches_attributes(self, attributes: Mapping[str, PublishedAttribute]) -> bool:
        return not self.rules or self.matches(MessageFields.from_attributes(attributes))

    def matches_body(self, body: str) -> bool:
        return not self.rules or self.matches(MessageFields.from_body(body))

    def matches_message(self, attributes: Mapping[str, PublishedAttribute], body: str) -> bool:
        """Match whichever part of the message the policy's scope names."""
        if self.scope == BODY_SCOPE:
            return self.matches_body(body)
        return self.matches_attributes(attributes)


MATCH_EVERYTHING_ATTRIBUTES = FilterPolicy(ATTRIBUTES_SCOPE, ())


def check_scope(value: str) -> FilterPolicyScope:
    """Validate a FilterPolicyScope attribute value."""
    if value == ATTRIBUTES_SCOPE:
        return ATTRIBUTES_SCOPE
    if value == BODY_SCOPE:
        return BODY_SCOPE
    raise InvalidFilterPolicy(
        f"FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody or MessageAttributes"
    )


def parse_filter_policy(text: str, scope: FilterPolicyScope = ATTRIBUTES_SCOPE) -> FilterPolicy:
    """Validate ``text`` as AWS does and compile it for ``scope``.

    An empty text or ``{}`` is the absence of a policy (everything matches).

    Raises:
        InvalidFilterPolicy: with AWS's reason (``FilterPolicy: ...``).
    """
    scope = check_scope(scope)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise InvalidFilterPolicy("FilterPolicy: Filter policy is too long")
    if not text.strip():
        return FilterPolicy(scope, ())
    try:
        document = _loads(text)
    except (ValueError, RecursionError):
        raise InvalidFilterPolicy(unparsable_json("FilterPolicy", text)) from None
    if document == {}:
        return FilterPolicy(scope, ())
    try:
        tree = read_policy(document)
    except PolicySyntaxError as error:
        raise InvalidFilterPolicy(error.reason) from None
    if tree.nested and scope == ATTRIBUTES_SCOPE:
        raise InvalidFilterPolicy("Filter policy scope MessageAttributes does not support nested filter policy")
    rules = _expand(tree.root)
    if max(len(rule) for rule in rules) > MAX_KEYS:
        raise InvalidFilterPolicy(f"FilterPolicy: Filter policy can not have more than {MAX_KEYS} keys")
    if sum(_combinations(rule) for rule in rules) > MAX_COMBINATIONS:
        raise _too_complex()
    return FilterPolicy(scope, tuple(tuple((path, leaf.matcher) for path, leaf in rule.items()) for rule in rules))


def _too_complex() -> InvalidFilterPolicy:
    return InvalidFilterPolicy("FilterPolicy: Filter policy is too complex")


def _expand(group: Group) -> list[dict[str, Leaf]]:
    """The rules of a group: ``$or`` distributes over the keys around it; a later equal path wins."""
    rules: list[dict[str, Leaf]] = [{}]
    for entry in group:
        if isinstance(entry, Leaf):
            for rule in rules:
                rule[entry.path] = entry
            continue
        assert isinstance(entry, Alternatives)
        branches = [branch for alternative in entry.groups for branch in _expand(alternative)]
        if len(branches) * len(rules) > MAX_COMBINATIONS:  # each rule counts at least one combination
            raise _too_complex()
        rules = [{**rule, **branch} for branch in branches for rule in rules]
    return rules


def _combinations(rule: dict[str, Leaf]) -> int:
    return math.prod(leaf.count * leaf.depth for leaf in rule.values())


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> JsonValue:
    """Strict JSON (no NaN or Infinity), as SNS's parser reads policies and bodies."""
    value: JsonValue = json.loads(text, parse_constant=_reject_constant)
    return value


def _leaf_value(value: JsonValue) -> Value:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    assert value is None or isinstance(value, str | float | bool)
    return value


def _flatten_value(value: JsonValue, path: str, into: dict[str, list[Value]]) -> None:
    if isinstance(value, dict):
        _flatten_object(value, path, into)
    elif isinstance(value, list):
        for item in value:
            _flatten_value(item, path, into)
    else:
        into.setdefault(path, []).append(_leaf_value(value))


def _flatten_object(document: dict[str, JsonValue], prefix: str, into: dict[str, list[Value]]) -> None:
    for key, value in document.items():
        _flatten_value(value, f"{prefix}.{key}" if prefix else key, into)


def _array_values(raw: str) -> list[Value]:
    """A ``String.Array`` attribute's elements; a malformed array carries no values."""
    try:
        document = _loads(raw)
    except (ValueError, RecursionError):
        return []
    if not isinstance(document, list):
        return []
    into: dict[str, list[Value]] = {}
    _flatten_value(document, "", into)
    return into.get("", [])


def _attribute_number(raw: str) -> Value:
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw
