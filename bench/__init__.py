"""Benchmarks (not tests): each module runs from the repository root as ``python -m bench.<name> [--quick] ...``.

``--quick`` is the smallest run that goes through a bench's whole code path in seconds;
tests/test_bench_quick.py runs every bench that way (marked ``slow``).
"""
