"""Shared fixtures; the helpers live in tests/sandboxlib.py."""

from sandboxlib import sandbox  # noqa: F401  (pytest fixture)
