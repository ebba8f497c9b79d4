"""Adapter for PBX platforms that speak a manager-interface event stream:
blocks of ``Key: Value`` lines separated by blank lines."""
