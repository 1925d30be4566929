"""Benchmarks for loosely: a raw-HTTP load generator driving a real server, measured against a reference app.

Run ``python -m benchmarks --help`` from the repository root. See ``benchmarks/README.md``.
"""
