"""Where settings come from, highest precedence first:

1. arguments given in code (CLI options such as ``--data-dir``);
2. environment variables ``AI_AGENTS_*``;
3. a dotenv file: ``AI_AGENTS_ENV_FILE``, default ``.env`` in the working directory (ignored
   when absent);
4. a secrets directory, ``AI_AGENTS_SECRETS_DIR``: one file per setting, named like the
   variable (``AI_AGENTS_DATABASE_URL``, ...), content = value — what Kubernetes writes when a
   Secret is mounted as a volume, so the service can read it without putting secrets in the
   environment;
5. the defaults in ``core.settings``.

The two locations are read when a ``Settings`` is created, not at import, so a process can set
them before it builds its settings (tests do).
"""

from __future__ import annotations

import os

from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
)

ENV_FILE_VARIABLE = "AI_AGENTS_ENV_FILE"
SECRETS_DIR_VARIABLE = "AI_AGENTS_SECRETS_DIR"


def settings_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    sources: list[PydanticBaseSettingsSource] = [
        init_settings,
        env_settings,
        DotEnvSettingsSource(settings_cls, env_file=os.environ.get(ENV_FILE_VARIABLE, ".env")),
    ]
    secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
    if secrets_dir:
        if not os.path.isdir(secrets_dir):
            raise ValueError(f"{SECRETS_DIR_VARIABLE}={secrets_dir}: not a directory")
        sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
    return tuple(sources)
