"""CLI and settings conventions: `ai-agents --version`, `health` exit codes (a warning is not
success), settings from a .env file and a Kubernetes-style secrets directory with the
documented precedence (code > environment > .env > secrets directory > defaults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from cli.health.checks import Check, HealthReport
from cli.support import IngressChoice
from core.ingress_mode import IngressMode
from core.version import package_version

ROOT = Path(__file__).resolve().parents[2]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AI_AGENTS_", "RAY_"))}


def test_version_flag_prints_the_package_version() -> None:
    result = subprocess.run(
        ["ai-agents", "--version"], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ai-agents {package_version()}\n"


def test_the_cli_starts_without_ray_openai_or_the_web_stack() -> None:
    """Every `ai-agents` call pays for what the CLI imports at start-up: Ray, the `openai`
    client and FastAPI cost ~2.5 s together, and most commands (`--version`, `tenant`, `health`)
    use none of them. The commands that do import them when they run."""
    heavy = (
        "ray",
        "openai",
        "fastapi",
        "uvicorn",
        "wordllama",
        "numpy",
        "kuberay.manifests.serve_config",
    )
    probe = f"import sys, cli.main; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_command_loads_only_its_own_module() -> None:
    """`cli.main` imports no command module; running one command imports that one alone (the
    root group loads commands lazily), so `ai-agents tenant ...` does not pay for `import`'s SDP
    client or `health`'s HTTP checks."""
    from cli.main import COMMANDS

    modules = sorted({module for module, _ in COMMANDS.values()})
    probe = (
        "import sys, cli.main\n"
        f"modules = {modules!r}\n"
        "print(sorted(m for m in modules if m in sys.modules))\n"
        "sys.argv = ['ai-agents', 'tenant', '--help']\n"
        "try:\n    cli.main.app()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in modules if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "[]" and lines[-1] == "['cli.tenants']", lines


@pytest.mark.parametrize(
    ("statuses", "verdict", "code"),
    [
        (["ok", "ok", "skip"], "healthy", 0),
        (["ok", "warn", "skip"], "degraded", 3),
        (["warn", "fail", "ok"], "unhealthy", 1),
        (["fail"], "unhealthy", 1),
    ],
)
def test_health_exit_code_follows_the_worst_check(statuses, verdict, code) -> None:
    report = HealthReport([Check(f"c{i}", s, "") for i, s in enumerate(statuses)])
    assert report.verdict == verdict and report.exit_code == code
    assert json.loads(json.dumps(report.to_dict()))["verdict"] == verdict


def test_health_usage_error_exits_2() -> None:
    result = subprocess.run(
        ["ai-agents", "health", "--max-queue", "-1"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def _settings_in_subprocess(env: dict[str, str], cwd: Path) -> dict[str, object]:
    code = (
        "import json; from core.settings import Settings; s = Settings(); "
        "print(json.dumps({'db': s.database_url and s.database_url.get_secret_value(), "
        "'port': s.http_port, 'model': s.llm_model, "
        "'key': s.llm_api_key and s.llm_api_key.get_secret_value()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_settings_precedence_env_dotenv_secrets_dir(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"  # as a mounted Kubernetes Secret: one file per key
    secrets.mkdir()
    (secrets / "AI_AGENTS_DATABASE_URL").write_text("postgresql://svc@db/from-secret")
    (secrets / "AI_AGENTS_LLM_API_KEY").write_text("sk-from-secret")
    (secrets / "AI_AGENTS_HTTP_PORT").write_text("9001")
    (secrets / "AI_AGENTS_LLM_MODEL").write_text("vendor/from-secret")
    (tmp_path / ".env").write_text("AI_AGENTS_HTTP_PORT=9002\nAI_AGENTS_LLM_MODEL=vendor/dotenv\n")
    env = {
        **_clean_env(),
        "AI_AGENTS_SECRETS_DIR": str(secrets),
        "AI_AGENTS_LLM_MODEL": "vendor/from-env",
        "PYTHONPATH": str(ROOT),
    }
    got = _settings_in_subprocess(env, tmp_path)  # .env found in the working directory
    assert got == {
        "db": "postgresql://svc@db/from-secret",
        "key": "sk-from-secret",
        "port": 9002,
        "model": "vendor/from-env",
    }
    # AI_AGENTS_ENV_FILE names another file; without a secrets dir the defaults remain
    other = tmp_path / "prod.env"
    other.write_text("AI_AGENTS_HTTP_PORT=9003\n")
    env = {**_clean_env(), "AI_AGENTS_ENV_FILE": str(other), "PYTHONPATH": str(ROOT)}
    got = _settings_in_subprocess(env, tmp_path)
    assert got["port"] == 9003 and got["db"] is None and got["model"] == "openai/gpt-4o-mini"


def test_missing_secrets_dir_is_a_one_line_cli_error(tmp_path: Path) -> None:
    env = {
        **_clean_env(),
        "AI_AGENTS_SECRETS_DIR": str(tmp_path / "nope"),
        "AI_AGENTS_DATA_DIR": str(tmp_path / "data"),
    }
    result = subprocess.run(
        ["ai-agents", "tenant", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "AI_AGENTS_SECRETS_DIR" in result.stderr and result.stderr.count("\n") == 1


def test_the_ingress_option_offers_every_ingress_mode() -> None:
    """`--ingress` choices are an Enum for Typer; they must be exactly the IngressMode literal."""
    assert [choice.value for choice in IngressChoice] == list(get_args(IngressMode))
    assert [choice.mode for choice in IngressChoice] == list(get_args(IngressMode))
