"""The real `ai-agents` executable: tenant admin and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess

import pytest


@pytest.fixture(scope="module")
def cli_env(data_dir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    env["AI_AGENTS_DATA_DIR"] = str(data_dir)
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ai-agents", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_tenant_lifecycle_and_errors(database, cli_env) -> None:
    created = run(cli_env, "tenant", "create", "cli-acme", "--sdp-url", "http://127.0.0.1:9",
                  "--sdp-key", "k", "--json")
    assert created.returncode == 0, created.stderr
    creds = json.loads(created.stdout)
    assert creds["tenant_id"] == "cli-acme"
    assert creds["webhook_secret"].startswith("whsec_") and creds["api_token"].startswith("aat_")

    assert_one_line_error(run(cli_env, "tenant", "create", "cli-acme", "--sdp-url",
                              "http://127.0.0.1:9", "--sdp-key", "k"), "already exists")
    assert_one_line_error(run(cli_env, "tenant", "create", "Not A Slug", "--sdp-url",
                              "http://x.example", "--sdp-key", "k"), "slug")
    assert_one_line_error(run(cli_env, "tenant", "create", "cli-x", "--sdp-url", "not a url",
                              "--sdp-key", "k"), "sdp_url")
    assert_one_line_error(run(cli_env, "tenant", "rotate-secret", "no-such-tenant"),
                          "unknown tenant")
    assert_one_line_error(run(cli_env, "tenant", "disable", "no-such-tenant"), "unknown tenant")

    listed = run(cli_env, "tenant", "list", "--json")
    assert listed.returncode == 0
    ids = [t["id"] for t in json.loads(listed.stdout)]
    assert "cli-acme" in ids
    assert "webhook_secret" not in listed.stdout and creds["api_token"] not in listed.stdout

    rotated = json.loads(run(cli_env, "tenant", "rotate-token", "cli-acme", "--json").stdout)
    assert rotated["api_token"] != creds["api_token"]
    disabled = json.loads(run(cli_env, "tenant", "disable", "cli-acme", "--json").stdout)
    assert disabled["status"] == "disabled"


def test_every_command_has_help_with_example(cli_env) -> None:
    for args in (["tenant", "create"], ["tenant", "list"], ["tenant", "rotate-secret"],
                 ["tenant", "rotate-token"], ["tenant", "disable"], ["migrate"]):
        result = run(cli_env, *args, "--help")
        assert result.returncode == 0
        assert "Example" in result.stdout, args


def test_serve_refuses_a_superuser_role(database, cli_env) -> None:
    env = dict(cli_env)
    env.update({"AI_AGENTS_DATABASE_URL": database.owner_url,  # the superuser owner
                "AI_AGENTS_ENCRYPTION_KEYS": "x" * 43 + "=", "AI_AGENTS_ADMIN_TOKEN": "adm"})
    result = run(env, "serve", "--port", "1")
    assert_one_line_error(result, "superuser")
