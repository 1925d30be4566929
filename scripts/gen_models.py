"""Generate the service models that loosely ships under ``src/loosely/protocols/data/``.

Why: current botocore describes SQS in AWS JSON 1.0 only, so its model lost the Query names
(``locationName``, ``flattened``, ``resultWrapper``, ``xmlNamespace``) that older SDKs still send
and parse. botocore 1.31.0 was the last release whose SQS model is Query. This script takes the
current shapes and operations (the truth about members, types and errors) and copies the Query
names over from the old model, kept in ``tests/unit/protocols/data/sqs/2012-11-05/service-2.json``.
SNS speaks Query only, so its current model is shipped as it is.

Documentation strings are dropped: the server never shows them and they are most of the size.

Run: ``python scripts/gen_models.py`` (with boto3 installed), then commit the changed JSON files.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import botocore

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "src" / "loosely" / "protocols" / "data"
OLD_SQS = ROOT / "tests" / "unit" / "protocols" / "data" / "sqs" / "2012-11-05" / "service-2.json"
QUERY_KEYS = ("locationName", "flattened", "resultWrapper")
# The order of keys in the written file: plain, stable and diff-friendly.
Json = dict[str, Any]


def load_current(service: str, version: str) -> Json:
    """The model installed with botocore (gzipped in recent releases)."""
    base = Path(botocore.__file__).parent / "data" / service / version
    gz = base / "service-2.json.gz"
    if gz.exists():
        return json.loads(gzip.decompress(gz.read_bytes()))
    return json.loads((base / "service-2.json").read_text())


def strip_docs(node: Any) -> Any:
    """The model without documentation strings."""
    if isinstance(node, dict):
        return {k: strip_docs(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [strip_docs(v) for v in node]
    return node


def copy_query_keys(target: Json, source: Json) -> None:
    """Copy the Query serialization keys of one shape or member reference onto another."""
    for key in QUERY_KEYS:
        if key in source and key not in target:
            target[key] = source[key]


def merge_shape(new: Json, old: Json) -> None:
    """Give one current shape the Query names its old counterpart had."""
    copy_query_keys(new, old)
    for ref in ("member", "key", "value"):
        if ref in new and ref in old:
            copy_query_keys(new[ref], old[ref])
    for name, member in new.get("members", {}).items():
        if name in old.get("members", {}):
            copy_query_keys(member, old["members"][name])


def merge_sqs(current: Json, old: Json) -> Json:
    """Current SQS shapes and operations with the Query names of the old model."""
    model = strip_docs(current)
    old = strip_docs(old)
    model["metadata"]["xmlNamespace"] = old["metadata"]["xmlNamespace"]
    model["metadata"]["protocols"] = ["json", "query"]
    for name, shape in model["shapes"].items():
        if name in old["shapes"]:
            merge_shape(shape, old["shapes"][name])
    for name, operation in model["operations"].items():
        old_op = old["operations"].get(name, {})
        if "output" in operation and "output" in old_op:
            copy_query_keys(operation["output"], old_op["output"])
        if "output" in operation and "resultWrapper" not in operation["output"]:
            operation["output"]["resultWrapper"] = f"{name}Result"
    return model


def write(model: Json, name: str) -> Path:
    path = OUT_DIR / name
    path.write_text(json.dumps(model, indent=1, sort_keys=True) + "\n")
    return path


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    sqs = merge_sqs(load_current("sqs", "2012-11-05"), json.loads(OLD_SQS.read_text()))
    sns = strip_docs(load_current("sns", "2010-03-31"))
    for path in (write(sqs, "sqs-2012-11-05.json"), write(sns, "sns-2010-03-31.json")):
        sys.stdout.write(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
