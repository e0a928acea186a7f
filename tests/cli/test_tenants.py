"""The real `ai-agents` executable: tenant admin and its one-line errors."""

from __future__ import annotations

import asyncio
import json
import subprocess

from tests.cli_runner import assert_one_line_error, run


def test_tenant_lifecycle_and_errors(database, cli_env) -> None:
    created = run(
        cli_env,
        "tenant",
        "create",
        "cli-acme",
        "--sdp-url",
        "http://127.0.0.1:9",
        "--sdp-key",
        "k",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    creds = json.loads(created.stdout)
    assert creds["tenant_id"] == "cli-acme"
    assert creds["webhook_secret"].startswith("whsec_") and creds["api_token"].startswith("aat_")

    assert_one_line_error(
        run(
            cli_env,
            "tenant",
            "create",
            "cli-acme",
            "--sdp-url",
            "http://127.0.0.1:9",
            "--sdp-key",
            "k",
        ),
        "already exists",
    )
    assert_one_line_error(
        run(
            cli_env,
            "tenant",
            "create",
            "Not A Slug",
            "--sdp-url",
            "http://x.example",
            "--sdp-key",
            "k",
        ),
        "slug",
    )
    assert_one_line_error(
        run(cli_env, "tenant", "create", "cli-x", "--sdp-url", "not a url", "--sdp-key", "k"),
        "sdp_url",
    )
    assert_one_line_error(
        run(cli_env, "tenant", "rotate-secret", "no-such-tenant"),
        "unknown tenant 'no-such-tenant'",
    )
    assert_one_line_error(
        run(cli_env, "tenant", "disable", "no-such-tenant"), "unknown tenant 'no-such-tenant'"
    )

    listed = run(cli_env, "tenant", "list", "--json")
    assert listed.returncode == 0
    by_id = {t["id"]: t for t in json.loads(listed.stdout)}
    assert "cli-acme" in by_id
    # the days kept in effect: the service's defaults for a tenant without its own
    assert by_id["cli-acme"]["retention"] == {
        "jobs": 90.0,
        "feedback": 365.0,
        "audit": 365.0,
        "llm_usage": 400.0,
    }
    table = run(cli_env, "tenant", "list")
    assert table.returncode == 0 and "90/365/365/400" in table.stdout
    assert "webhook_secret" not in listed.stdout and creds["api_token"] not in listed.stdout

    rotated = json.loads(run(cli_env, "tenant", "rotate-token", "cli-acme", "--json").stdout)
    assert rotated["api_token"] != creds["api_token"]
    disabled = json.loads(run(cli_env, "tenant", "disable", "cli-acme", "--json").stdout)
    assert disabled["status"] == "disabled"


def test_every_command_has_help_with_example(cli_env) -> None:
    for args in (
        ["tenant", "create"],
        ["tenant", "list"],
        ["tenant", "rotate-secret"],
        ["tenant", "rotate-token"],
        ["tenant", "disable"],
        ["tenant", "erase-requester"],
        ["migrate"],
    ):
        result = run(cli_env, *args, "--help")
        assert result.returncode == 0
        assert "Example" in result.stdout, args


def test_serve_refuses_a_superuser_role(database, cli_env) -> None:
    env = dict(cli_env)
    env.update(
        {
            "AI_AGENTS_DATABASE_URL": database.owner_url,  # the superuser owner
            "AI_AGENTS_ENCRYPTION_KEYS": "x" * 43 + "=",
            "AI_AGENTS_ADMIN_TOKEN": "adm",
        }
    )
    result = run(env, "serve", "--port", "1")
    assert_one_line_error(result, "superuser")


async def _stored_keys(owner_url: str, keys: str, ids: list[str]) -> dict[str, str]:
    import asyncpg

    from pipeline.tenancy.credential_cipher import CredentialCipher

    cipher = CredentialCipher.from_csv(keys)
    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch("SELECT id, sdp_api_key_enc FROM tenants WHERE id = ANY($1)", ids)
    finally:
        await conn.close()
    return {row["id"]: cipher.decrypt(bytes(row["sdp_api_key_enc"])) for row in rows}


def test_sdp_key_from_a_file_or_stdin_never_the_command_line(
    database, cli_env, data_dir, tmp_path
) -> None:
    """`tenant create --sdp-key-file PATH` and `--sdp-key-file -` (stdin) store exactly the
    key the file or pipe holds, without its line break; the key is not in the arguments."""
    from local_stack.runtime import LOCAL_SECRETS_FILE

    key_file = tmp_path / "sdp-key"
    key_file.write_text("key-from-a-file-42\n")
    args = ["tenant", "create", "--sdp-url", "http://127.0.0.1:9", "--json"]
    from_file = run(cli_env, *args[:2], "cli-keyfile", *args[2:], "--sdp-key-file", str(key_file))
    assert from_file.returncode == 0, from_file.stderr
    piped = subprocess.run(
        ["ai-agents", *args[:2], "cli-keypipe", *args[2:], "--sdp-key-file", "-"],
        env=cli_env,
        input="key-from-stdin-7\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    secrets = json.loads((data_dir / LOCAL_SECRETS_FILE).read_text())
    stored = asyncio.run(
        _stored_keys(database.owner_url, secrets["encryption_key"], ["cli-keyfile", "cli-keypipe"])
    )
    assert stored == {"cli-keyfile": "key-from-a-file-42", "cli-keypipe": "key-from-stdin-7"}

    both = run(cli_env, *args[:2], "cli-k2", *args[2:], "--sdp-key", "k", "--sdp-key-file", "-")
    assert_one_line_error(both, "exactly one of --sdp-key-file and --sdp-key")
    assert_one_line_error(
        run(cli_env, *args[:2], "cli-k3", *args[2:]), "exactly one of --sdp-key-file"
    )
    assert_one_line_error(
        run(cli_env, *args[:2], "cli-k4", *args[2:], "--sdp-key-file", str(tmp_path / "none")),
        "cannot read --sdp-key-file",
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert_one_line_error(
        run(cli_env, *args[:2], "cli-k5", *args[2:], "--sdp-key-file", str(empty)),
        "must hold the key on one line",
    )


def test_erase_requester_answers_what_it_erased_and_refuses_bad_input(database, cli_env) -> None:
    created = run(
        cli_env,
        "tenant",
        "create",
        "cli-erase",
        "--sdp-url",
        "http://127.0.0.1:9",
        "--sdp-key",
        "k",
    )
    assert created.returncode == 0, created.stderr
    erased = run(
        cli_env,
        "tenant",
        "erase-requester",
        "--tenant",
        "cli-erase",
        "dana@client.example",
        "--name",
        "Dana Finance",
        "--json",
    )
    assert erased.returncode == 0, erased.stderr
    report = json.loads(erased.stdout)
    assert report["tenant_id"] == "cli-erase" and report["tickets"] == []
    assert report["names_searched"] == 1 and set(report["counts"]) >= {
        "tickets",
        "history_deleted",
        "jobs_erased",
        "feedback_scrubbed",
        "audit_scrubbed",
    }
    plain = run(cli_env, "tenant", "erase-requester", "--tenant", "cli-erase", "x@client.example")
    assert plain.returncode == 0 and "erasure " in plain.stdout and "x@client" not in plain.stdout
    assert_one_line_error(
        run(cli_env, "tenant", "erase-requester", "--tenant", "no-such-tenant", "a@b.example"),
        "unknown tenant 'no-such-tenant'",
    )
    assert_one_line_error(
        run(cli_env, "tenant", "erase-requester", "--tenant", "cli-erase", "not-an-email"),
        "invalid email",
    )
    assert_one_line_error(
        run(
            cli_env,
            "tenant",
            "erase-requester",
            "--tenant",
            "cli-erase",
            "a@b.example",
            "--name",
            "Al",
        ),
        "invalid names",
    )
