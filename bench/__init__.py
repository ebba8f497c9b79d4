"""Benchmarks: the runtime loop, the call cascade and the sidecar (docs/benchmarks.md)."""
