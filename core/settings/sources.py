"""Where settings come from besides code and the environment: the dotenv file and the secrets
directory, both located when a ``Settings`` is created (see ``core.settings``)."""

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
