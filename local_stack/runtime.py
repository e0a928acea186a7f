"""Resolve where the database and secrets come from before anything starts.

External database: every secret must be configured. Embedded database: a missing encryption
key or admin token is generated once into ``<data_dir>/local-secrets.json`` (mode 0600) and
reused, so ``ai-agents demo`` needs no set-up. The resolved values are exported to the process
environment so Ray workers started from this process read the same settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from db.embedded import EmbeddedDatabase, start_embedded
from db.migrate import migrate
from pipeline.tenancy.credential_cipher import new_encryption_key, new_secret

LOCAL_SECRETS_FILE = "local-secrets.json"


class ConfigurationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Runtime:
    service_url: str
    owner_url: str | None
    encryption_keys: str
    admin_token: str | None
    embedded: EmbeddedDatabase | None
    metrics_token: str | None = None  # Prometheus' bearer token for GET /metrics


def _local_secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / LOCAL_SECRETS_FILE
    if path.exists():
        values = json.loads(path.read_text())
        if "metrics_token" not in values:  # written by a version without metrics auth
            values["metrics_token"] = new_secret("met_")
            temporary = path.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(values, handle)
            temporary.replace(path)
        return values
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "encryption_key": new_encryption_key(),
        "admin_token": new_secret("adm_"),
        "metrics_token": new_secret("met_"),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


async def resolve_runtime(
    settings: Settings, *, run_migrations: bool = True, stop_embedded_on_exit: bool = True
) -> Runtime:
    if settings.database_url is not None:
        if settings.encryption_keys is None:
            raise ConfigurationError(
                "AI_AGENTS_ENCRYPTION_KEYS is required with an external database"
            )
        if settings.admin_token is None:
            raise ConfigurationError("AI_AGENTS_ADMIN_TOKEN is required with an external database")
        owner = settings.migration_database_url
        runtime = Runtime(
            service_url=settings.database_url.get_secret_value(),
            owner_url=owner.get_secret_value() if owner else None,
            encryption_keys=settings.encryption_keys.get_secret_value(),
            admin_token=settings.admin_token.get_secret_value(),
            embedded=None,
            metrics_token=(
                settings.metrics_token.get_secret_value() if settings.metrics_token else None
            ),
        )
        if run_migrations and runtime.owner_url:
            await migrate(runtime.owner_url, runtime.service_url)
        return runtime

    embedded = start_embedded(settings.data_dir, stop_on_exit=stop_embedded_on_exit)
    local = _local_secrets(settings.data_dir)
    runtime = Runtime(
        service_url=embedded.service_url,
        owner_url=embedded.owner_url,
        encryption_keys=(
            settings.encryption_keys.get_secret_value()
            if settings.encryption_keys
            else local["encryption_key"]
        ),
        admin_token=(
            settings.admin_token.get_secret_value()
            if settings.admin_token
            else local["admin_token"]
        ),
        embedded=embedded,
        metrics_token=(
            settings.metrics_token.get_secret_value()
            if settings.metrics_token
            else local["metrics_token"]
        ),
    )
    if run_migrations:
        await migrate(embedded.owner_url, embedded.service_url)
    return runtime


def export_environment(runtime: Runtime) -> None:
    """Make child processes (Ray workers) see the resolved configuration."""
    os.environ["AI_AGENTS_DATABASE_URL"] = runtime.service_url
    os.environ["AI_AGENTS_ENCRYPTION_KEYS"] = runtime.encryption_keys
    if runtime.admin_token:
        os.environ["AI_AGENTS_ADMIN_TOKEN"] = runtime.admin_token
    if runtime.metrics_token:
        os.environ["AI_AGENTS_METRICS_TOKEN"] = runtime.metrics_token
