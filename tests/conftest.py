"""Shared fixtures; the helpers and the ``sandbox`` fixture live in tests/sandboxlib.py."""

pytest_plugins = ["sandboxlib"]
