"""The release tool: the versions manifest, its checks, and starting a release.

``troupe release ...`` (see :mod:`troupe.release.commands`) and docs/releases.md.
"""
