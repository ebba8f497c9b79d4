"""Benchmark of the runtime loop (issue 2, point 8): ``python -m bench.runtime``."""
