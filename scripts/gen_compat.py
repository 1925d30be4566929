"""Write ``docs/compatibility.md`` from the operations tables (see `loosely.protocols.compat`).

Run: ``python scripts/gen_compat.py``; ``--check`` exits 1 when the page is stale instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loosely.protocols.compat import render_compatibility
from loosely.protocols.dispatch import SERVICES

PAGE = Path(__file__).resolve().parent.parent / "docs" / "compatibility.md"


def main(argv: list[str]) -> int:
    text = render_compatibility(SERVICES)
    if "--check" in argv:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            sys.stderr.write(f"{PAGE} is stale: run python scripts/gen_compat.py\n")
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
