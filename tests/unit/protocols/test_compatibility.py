"""docs/compatibility.md is generated from the operations tables and must not go stale."""

from __future__ import annotations

from pathlib import Path

from loosely.protocols.compat import render_compatibility
from loosely.protocols.dispatch import SERVICES

PAGE = Path(__file__).resolve().parents[3] / "docs" / "compatibility.md"


def test_compatibility_page_matches_operations_tables() -> None:
    assert PAGE.read_text(encoding="utf-8") == render_compatibility(SERVICES), (
        "docs/compatibility.md is stale: run python scripts/gen_compat.py"
    )


def test_compatibility_page_lists_every_sqs_operation_with_both_protocols() -> None:
    text = render_compatibility(SERVICES)
    for op in SERVICES[0].model.operations:
        assert f"| {op} | " in text
    assert "AWS JSON 1.0, Query/XML" in text
