"""The compatibility page, rendered from the operations tables.

Why generated: a hand-kept list drifts from the code. ``docs/compatibility.md`` is this module's
output (``python scripts/gen_compat.py`` writes it) and a test fails when the two differ.
"""

from __future__ import annotations

from collections.abc import Sequence

from loosely.protocols.service import ServiceSpec

__all__ = ["render_compatibility"]

_PROTOCOL_NAMES = {"json": "AWS JSON 1.0", "query": "Query/XML"}
_HEADER = """# Compatibility

Generated from the operations tables in `src/loosely/protocols/<service>/operations.py` by
`python scripts/gen_compat.py`; do not edit by hand (a test fails when this page is stale).

Each operation is *supported* (behaves as AWS documents it), *partial* (accepted and answered as
AWS does, with the limits in its notes) or *unsupported* (answers AWS's error for unknown actions).
"""


def _service_section(service: ServiceSpec) -> list[str]:
    protocols = ", ".join(_PROTOCOL_NAMES.get(p, p) for p in service.protocols)
    registered = {op.name: op for op in service.operations}
    lines = [
        f"## {service.model.metadata.get('serviceFullName', service.signing_name)} (`{service.signing_name}`)",
        "",
        f"API version `{service.query_version}`; protocols: {protocols}. "
        f"{len(registered)} of {len(service.model.operations)} operations implemented.",
        "",
        "| Operation | Support | Protocols | Notes |",
        "|---|---|---|---|",
    ]
    for name in sorted(service.model.operations):
        op = registered.get(name)
        support = op.support if op else "unsupported"
        notes = op.notes if op else ""
        lines.append(f"| {name} | {support} | {protocols if op else '—'} | {notes} |")
    return lines


def render_compatibility(services: Sequence[ServiceSpec]) -> str:
    """The whole Markdown page for ``services``."""
    lines = [_HEADER]
    for service in services:
        lines.extend(_service_section(service))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
