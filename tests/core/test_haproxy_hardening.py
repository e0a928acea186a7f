"""`ai-agents-haproxy`: the configuration Ray Serve generates, bounded before HAProxy starts
(core/network/haproxy.py). The input is a configuration Serve 2.60 really generated
(`haproxy_generated.cfg`); the output is checked by the real HAProxy binary (`haproxy -c`), and
the launcher a local run uses is run as Serve runs it. What the bounds do to live traffic is
tests/e2e/test_red_team_ray.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from core.network.haproxy import HardeningError, Limits, harden, real_binary, write_launcher

GENERATED = Path(__file__).with_name("haproxy_generated.cfg")


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    (tmp_path / "500.http").write_text("HTTP/1.1 500 Internal Server Error\r\n\r\n")
    config = tmp_path / "haproxy.cfg"
    config.write_text(GENERATED.read_text().replace("{state}", str(tmp_path)))
    return config


def _section(config: str, header: str) -> list[str]:
    lines = config.splitlines()
    start = lines.index(header)
    rest = lines[start + 1 :]
    end = next((i for i, line in enumerate(rest) if line and not line[0].isspace()), len(rest))
    return [line.strip() for line in rest[:end]]


def test_stats_and_exporter_listen_on_loopback_and_the_frontend_is_bounded(
    generated: Path,
) -> None:
    before = generated.read_text()
    assert "bind :26755" in _section(before, "frontend prometheus")  # every interface
    assert "bind *:26754" in _section(before, "listen stats")
    after = harden(before, Limits(max_body_bytes=2048, request_timeout_s=7))
    assert "bind 127.0.0.1:26755" in _section(after, "frontend prometheus")
    assert "bind 127.0.0.1:26754" in _section(after, "listen stats")
    defaults = _section(after, "defaults")
    assert "timeout http-request 7s" in defaults and "option forwardfor" in defaults
    frontend = _section(after, "frontend http_frontend")
    assert frontend[0] == "bind 127.0.0.1:26753"  # the service's own port is left as Serve set it
    deny = next(line for line in frontend if line.startswith("http-request deny"))
    assert "deny_status 413" in deny and "gt 2048 }" in deny and "hdr connection close" in deny
    assert '\\"Request body larger than 2048 bytes\\"' in deny
    assert "http-request wait-for-body time 7s" in frontend
    # the rules come first: before any of Serve's http-request rules in that frontend
    first_serve_rule = next(i for i, line in enumerate(frontend) if "set-log-level" in line)
    assert frontend.index(deny) < first_serve_rule
    # nothing else changed: Serve's configuration, line for line, with those binds moved
    added = {line for line in after.splitlines() if "core/network/haproxy.py" in line} | {
        "    timeout http-request 7s",
        "    option forwardfor",
        "    " + deny,
        "    http-request wait-for-body time 7s",
    }
    moved = {
        "    bind :26755": "    bind 127.0.0.1:26755",
        "  bind *:26754": "  bind 127.0.0.1:26754",
    }
    expected = [moved.get(line, line) for line in before.splitlines()]
    assert [line for line in after.splitlines() if line not in added] == expected


def test_the_hardened_configuration_is_valid_for_haproxy(generated: Path) -> None:
    hardened = generated.with_name("hardened.cfg")
    hardened.write_text(harden(generated.read_text(), Limits()))
    check = subprocess.run(
        [real_binary(), "-c", "-f", str(hardened)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Configuration file is valid" in check.stdout + check.stderr


def test_a_configuration_it_does_not_know_is_refused() -> None:
    with pytest.raises(HardeningError, match="http_frontend"):
        harden("global\n    maxconn 10\ndefaults\n    mode http\n", Limits())


def test_the_launcher_hardens_then_becomes_haproxy(generated: Path, tmp_path: Path) -> None:
    launcher = write_launcher(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "RAY_SERVE_HAPROXY_BINARY_PATH": str(launcher)}
    ran = subprocess.run(
        [str(launcher), "-c", "-f", str(generated)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**env, "AI_AGENTS_HAPROXY_REQUEST_TIMEOUT_S": "4"},
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    hardened = generated.with_name("haproxy.cfg.hardened").read_text()
    assert "timeout http-request 4s" in hardened
    assert re.search(r"^  bind 127\.0\.0\.1:26754$", hardened, re.M)
    broken = subprocess.run(
        [str(launcher), "-c", "-f", str(generated)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**env, "AI_AGENTS_MAX_BODY_BYTES": "lots"},
    )
    assert broken.returncode == 1 and "AI_AGENTS_MAX_BODY_BYTES" in broken.stderr
