"""The installed package's version: pyproject.toml is the one place it is written, and the CLI,
the OpenAPI document and the default image tag read it from the package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "ai-agents"


def package_version() -> str:
    """Version of the installed `ai-agents` distribution (``0+unknown`` when run from a source
    tree that was never installed, so callers always get a PEP 440 string)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
