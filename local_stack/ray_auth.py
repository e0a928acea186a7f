"""Make a fresh `ai-agents` process speak to a token-protected local Ray cluster.

A local ``ray.init`` in Ray 2.60 turns token authentication on by default and writes the token
to ``~/.ray/auth_token``. A *client* process, though, only attaches the token when its own
authentication mode is ``token``: Ray's HTTP clients (``JobSubmissionClient``, used by
``ai-agents reenhance``) call ``ray._private.authentication.http_token_authentication.
get_auth_headers_if_auth_enabled``, which asks ``ray._raylet.get_authentication_mode()``, and
that reads ``RAY_AUTH_MODE`` when Ray's config is initialised. Nothing sets it in a second
terminal, so every call would fail with ``AuthenticationError`` (as ``ray job list`` does).
Ray's own helper for drivers (``maybe_enable_token_auth_if_token_available``) does what this
module does, but only inside ``ray.init`` and with a warning on every call.

Rule: when ``RAY_AUTH_MODE`` is unset and a token is where Ray looks for one
(``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``), use token mode for this
process and its children. An explicit ``RAY_AUTH_MODE`` (e.g. ``disabled``) always wins.
Sending a token to a cluster without authentication is harmless: its middleware ignores it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"
DASHBOARD_TOKEN_HINT = "token-protected: sign in with the output of `ray get-auth-token`"


def ray_token_file() -> Path:
    """Where Ray reads (and a local ``ray.init`` writes) the token."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def ray_token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return True
    try:
        return bool(ray_token_file().read_text().strip())
    except OSError:
        return False


def use_ray_token_if_available() -> bool:
    """Put this process in Ray's token mode when a token exists and no mode was chosen.

    Returns whether token mode is on. Call it before Ray is first used; if Ray's extension
    is already loaded its cached config is re-read, as Ray's own helper does.
    """
    chosen = os.environ.get(AUTH_MODE_VARIABLE)
    if chosen is not None:
        return chosen.strip().lower() == "token"
    if not ray_token_available():
        return False
    os.environ[AUTH_MODE_VARIABLE] = "token"
    if "ray._raylet" in sys.modules:
        from ray._raylet import Config  # type: ignore[attr-defined]  # not in Ray's _raylet.pyi

        Config.initialize("")
    return True
