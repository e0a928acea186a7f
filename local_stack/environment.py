"""The ``AI_AGENTS_*`` settings a locally started service reads.

Ray workers inherit the environment of the process that starts Ray, and every Serve replica
reads its settings from it, so the stack sets them in ``os.environ`` before ``ray.init`` (and
clears the settings cache, which may already hold values read earlier in this process).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# The SDP simulator listens on 127.0.0.1, which the SSRF rules refuse by default.
LOOPBACK_SDP = {"AI_AGENTS_SDP_ALLOW_LOOPBACK": "true"}


def simulated_llm_environment(llm_url: str, api_key: str) -> dict[str, str]:
    """Point the service's OpenRouter client at the LLM simulator (it speaks the same API)."""
    return {"AI_AGENTS_LLM_BASE_URL": f"{llm_url}/api/v1", "AI_AGENTS_LLM_API_KEY": api_key}


def service_environment(
    *,
    database_url: str,
    encryption_keys: str,
    admin_token: str,
    data_dir: str,
    llm_url: str,
    llm_api_key: str,
    metrics_token: str | None = None,
) -> dict[str, str]:
    """Everything a service against the local database and both simulators needs; callers add
    their own tuning (log level, timeouts, retry pacing) on top."""
    env = {
        "AI_AGENTS_DATABASE_URL": database_url,
        "AI_AGENTS_ENCRYPTION_KEYS": encryption_keys,
        "AI_AGENTS_ADMIN_TOKEN": admin_token,
        "AI_AGENTS_DATA_DIR": data_dir,
        **simulated_llm_environment(llm_url, llm_api_key),
        **LOOPBACK_SDP,
    }
    if metrics_token is not None:
        env["AI_AGENTS_METRICS_TOKEN"] = metrics_token
    return env


def apply_environment(env: Mapping[str, str], *, replace: bool = False) -> None:
    """Set ``env`` in this process (so Ray workers started from it inherit it) and make
    ``get_settings`` read it afresh. ``replace`` first removes every ``AI_AGENTS_*`` variable,
    so nothing from the caller's shell or an earlier run leaks into the service."""
    if replace:
        for key in [k for k in os.environ if k.startswith("AI_AGENTS_")]:
            del os.environ[key]
    os.environ.update(env)
    from core.settings import get_settings

    get_settings.cache_clear()
