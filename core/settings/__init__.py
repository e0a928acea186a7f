"""Service configuration (pydantic-settings, prefix ``AI_AGENTS_``).

The `AI_AGENTS_*` names are a public contract (the docs, KubeRay values, operators' secrets):
keep them. Values that are secrets are ``SecretStr`` so they never show up in a repr, a log line
or an error body.

Where settings come from, highest precedence first:

1. arguments given in code (CLI options such as ``--data-dir``);
2. environment variables ``AI_AGENTS_*``;
3. a dotenv file: ``AI_AGENTS_ENV_FILE``, default ``.env`` in the working directory (ignored
   when absent);
4. a secrets directory, ``AI_AGENTS_SECRETS_DIR``: one file per setting, named like the
   variable (``AI_AGENTS_DATABASE_URL``, ...), content = value — what Kubernetes writes when a
   Secret is mounted as a volume, so the service reads secrets without an environment variable;
5. the defaults below.

The two locations are read when a ``Settings`` is created, not at import, so a process can set
them before it builds its settings (tests do).
"""

from core.settings.model import RetentionDays, Settings, get_settings
from core.settings.sources import ENV_FILE_VARIABLE, SECRETS_DIR_VARIABLE

__all__ = ["ENV_FILE_VARIABLE", "SECRETS_DIR_VARIABLE", "RetentionDays", "Settings", "get_settings"]
