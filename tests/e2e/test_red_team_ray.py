"""Red-team probes that need Ray and HAProxy: `ai-agents serve` as an operator runs it (HAProxy
ingress, the default), probed from loopback the way issue 29 found its holes.

- Nothing the local stack starts listens beyond loopback: Ray's metrics agent (whose series
  name every tenant), the GCS, the raylet, HAProxy's stats page and Prometheus exporter.
- Slow clients through HAProxy: headers or a body at a byte a second get a 408 and are closed
  within HAProxy's request timeout; a declared 100 MiB body gets its 413 and the connection is
  closed at once.
- Behind HAProxy each client has its own feedback-link limit (HAProxy forwards the client's
  address, and only HAProxy is trusted for it), so a forged `X-Forwarded-For` buys nothing and
  one client's burst locks out nobody else.
- A whole flow (admin calls, a webhook, its note with feedback links, the links used, a form
  with a NUL) leaves none of its credentials in any log file of the run: the Ray session's
  logs, HAProxy's files, the process's stderr.

One `serve` for the module (its own data directory, database and Ray), in the Ray side lane.
The Ray-free probes are tests/api/test_red_team.py.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from core.ports import free_port
from local_stack.database import remove_data_dir
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.servicedesk.webhook_sender import v3_payload, webhook_headers
from simulators.serving import run_in_thread
from tests import lanes
from tests.e2e.serve_process import wait_until_ready
from tests.slow_client import watch_slow_client

pytestmark = lanes.ray_side

REQUEST_TIMEOUT_S = 3  # AI_AGENTS_HAPROXY_REQUEST_TIMEOUT_S of this run, to keep probes short


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    url: str
    data_dir: Path
    sdp: SimulatorState
    sdp_url: str
    secrets: dict[str, str]
    stderr: list[str]

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets['admin_token']}"}


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    data_dir = Path(tempfile.mkdtemp(prefix="aarr-", dir="/tmp"))
    port, dashboard_port = free_port(), free_port()
    sdp = SimulatorState()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ["HOME"],
        "AI_AGENTS_SDP_ALLOW_LOOPBACK": "true",  # the SDP simulator below
        "AI_AGENTS_PUBLIC_URL": f"http://127.0.0.1:{port}",  # notes carry feedback links
        "AI_AGENTS_HAPROXY_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        "AI_AGENTS_LOG_LEVEL": "DEBUG",  # the scan reads what an operator could turn on
    }
    if "PYTHONPATH" in os.environ:  # the checkout under test (a worktree sets it)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    with run_in_thread(create_sdp_app(sdp)) as sdp_server:
        process = subprocess.Popen(
            ["ai-agents", "serve", "--port", str(port), "--dashboard-port", str(dashboard_port)]
            + ["--data-dir", str(data_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr: list[str] = []
        try:
            wait_until_ready(process, f"http://127.0.0.1:{port}", timeout_s=240)
            assert process.stderr is not None
            threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True).start()  # type: ignore[arg-type]
            secrets = json.loads((data_dir / "local-secrets.json").read_text())
            yield Served(
                process,
                port,
                f"http://127.0.0.1:{port}",
                data_dir,
                sdp,
                sdp_server.url,
                secrets,
                stderr,
            )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
            remove_data_dir(data_dir)


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _listening(pid: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every TCP listener of the process and its children."""
    found = []
    for proc in _tree(pid):
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((conn.laddr.ip, conn.laddr.port, proc.name()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_nothing_the_local_stack_starts_listens_beyond_loopback(served: Served) -> None:
    """Except what Ray 2.60 binds to every interface with no setting: each Serve replica's
    inter-deployment gRPC server (``[::]:0``), which refuses a call without Ray's token."""
    listeners = _listening(served.process.pid)
    names = {name for _, _, name in listeners}
    assert "haproxy" in names and "gcs_server" in names and "raylet" in names, listeners
    assert any("Dashboard" in name for name in names), listeners  # the metrics agent
    exposed = [entry for entry in listeners if not _loopback(entry[0])]
    replicas = [entry for entry in exposed if entry[2].startswith("ray::ServeReplica:")]
    assert exposed == replicas, exposed
    for _, port, name in replicas:
        assert _refuses_without_ray_token(port), (name, port)
    # HAProxy's stats page and exporter: there, but only on loopback
    haproxy_ports = {port for _, port, name in listeners if name == "haproxy"} - {served.port}
    answers = {}
    for port in haproxy_ports:
        for path in ("/stats", "/metrics"):
            try:
                answers[(port, path)] = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            except httpx.HTTPError:
                continue
    assert any(r.status_code == 200 and "HAProxy" in r.text for r in answers.values()), answers
    assert any(r.status_code == 200 and "haproxy_" in r.text for r in answers.values()), answers
    outside = _non_loopback_address()
    if outside is not None:  # the same ports from the machine's other address: refused
        for port in {port for _, port, _ in listeners} - {port for _, port, _ in replicas}:
            with pytest.raises(OSError):
                socket.create_connection((outside, port), timeout=2).close()


def _refuses_without_ray_token(port: int) -> bool:
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/ray.serve.ASGIService/HandleRequest")
        try:
            call(b"", timeout=10)
        except grpc.RpcError as error:
            return error.code() == grpc.StatusCode.UNAUTHENTICATED
    return False


def _non_loopback_address() -> str | None:
    """This machine's address on its default route, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if _loopback(address) else address


def test_slow_clients_are_cut_and_early_refusals_close_the_connection(served: Served) -> None:
    post = b"POST /webhook/servicedesk/rt HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    probes = {
        "headers": (b"GET /health HTTP/1.1\r\nHost: t\r\n", b"X-Slow: " + b"a" * 60),
        "body": (post + b"Content-Length: 60\r\n\r\n{", b" " * 59),
        "huge": (post + b"Content-Length: 104857600\r\n\r\n", b""),
    }
    results: dict[str, tuple[float, bytes]] = {}

    def run(name: str) -> None:
        results[name] = watch_slow_client(
            served.port, *probes[name], watch_s=REQUEST_TIMEOUT_S + 12
        )

    threads = [threading.Thread(target=run, args=(name,)) for name in probes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in ("headers", "body"):
        closed_after, answer = results[name]
        assert answer.startswith(b"HTTP/1.1 408"), (name, answer[:120])
        assert closed_after < REQUEST_TIMEOUT_S + 3, (name, closed_after)
    closed_after, answer = results["huge"]
    assert answer.startswith(b"HTTP/1.1 413") and b'"detail"' in answer, answer[:300]
    assert closed_after < 2, closed_after


def test_behind_haproxy_a_forged_forwarded_for_buys_nothing_and_spares_others(
    served: Served,
) -> None:
    def statuses(source: str, n: int, forge: bool) -> list[int]:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport, timeout=10) as http:
            out = []
            for i in range(n):
                headers = {"Accept": "application/json"}
                if forge:
                    headers["X-Forwarded-For"] = f"198.18.0.{i + 1}"
                out.append(http.get(f"{served.url}/f/not-a-token", headers=headers).status_code)
            return out

    greedy = statuses("127.0.0.2", 40, forge=True)
    assert greedy.count(429) >= 30, greedy  # one client, whatever it wrote
    assert statuses("127.0.0.3", 3, forge=False) == [400, 400, 400]  # another: unaffected


def test_a_served_flow_leaves_no_credential_in_any_log_file(served: Served) -> None:
    http = httpx.Client(base_url=served.url, timeout=30)
    secrets = {k: v for k, v in served.secrets.items() if isinstance(v, str)}
    tenant_id, sdp_key = f"rtr-{uuid.uuid4().hex[:6]}", "sdp-key-" + uuid.uuid4().hex
    created = http.post(
        "/admin/tenants",
        json={"id": tenant_id, "sdp_url": served.sdp_url, "sdp_key": sdp_key},
        headers=served.admin,
    )
    assert created.status_code == 201, created.text
    tenant = created.json()
    secrets |= {"sdp": sdp_key, "webhook": tenant["webhook_secret"], "api": tenant["api_token"]}
    served.sdp.add_portal(tenant_id, sdp_key)
    request = served.sdp.add_request(
        tenant_id, subject="VPN drops", description="The VPN drops every hour at 10.1.2.3"
    )
    body = json.dumps(v3_payload(request)).encode()
    headers = webhook_headers(body, "hmac", tenant["webhook_secret"])
    assert (
        http.post(f"/webhook/servicedesk/{tenant_id}", content=body, headers=headers).status_code
        == 202
    )
    forged = webhook_headers(body, "hmac", "whsec_forged")
    assert (
        http.post(f"/webhook/servicedesk/{tenant_id}", content=body, headers=forged).status_code
        == 403
    )

    deadline = time.monotonic() + 120
    while not served.sdp.recorded_notes(tenant_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    [note] = served.sdp.recorded_notes(tenant_id)
    links = sorted(set(re.findall(r"/f/([A-Za-z0-9._-]+)", note.description)))
    assert len(links) == 7, note.description
    secrets |= {f"link{i}": token for i, token in enumerate(links)}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert http.get(f"/f/{links[0]}").status_code == 200
    assert http.post(f"/f/{links[0]}", content="comment=thanks", headers=form).status_code == 200
    nul = http.post(
        f"/f/{links[1]}", content="comment=a%00b", headers={**form, "Accept": "text/html"}
    )
    assert nul.status_code == 422 and "text/html" in nul.headers["content-type"]
    assert http.get(f"/f/{links[2]}%0a").status_code == 400
    rotated = http.post(f"/admin/tenants/{tenant_id}/rotate-secret", headers=served.admin)
    secrets["rotated"] = rotated.json()["webhook_secret"]
    metrics = {"Authorization": f"Bearer {served.secrets['metrics_token']}"}
    assert http.get("/metrics", headers=metrics).status_code == 200
    assert "components" in http.get("/api/v1/ready", headers=metrics).json()
    http.close()
    time.sleep(3)  # Ray flushes worker logs to their files

    files = _log_files(served)
    assert any("worker" in path.name for path in files), files  # the replicas' logs were read
    leaks = {}
    for path in files:
        text = path.read_text(errors="replace")
        found = [name for name, secret in secrets.items() if secret and secret in text]
        if found:
            leaks[str(path)] = found
    text = "".join(served.stderr)
    found = [name for name, secret in secrets.items() if secret and secret in text]
    if found:
        leaks["serve stderr"] = found
    assert leaks == {}, leaks


def _log_files(served: Served) -> list[Path]:
    """Every file the run logged to: its Ray session's, HAProxy's, the data directory's."""
    sessions = Path(tempfile.gettempdir(), "ray").glob(f"session_*_{served.process.pid}")
    roots = [session / "logs" for session in sessions]
    for proc in _tree(served.process.pid):
        try:
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if proc.name() == "haproxy" and "-f" in cmdline:
            roots.append(Path(cmdline[cmdline.index("-f") + 1]).parent)
    assert roots, "no log directory of this run found"
    files = [p for root in roots for p in root.rglob("*") if p.is_file() and "socket" not in p.name]
    files += [p for p in served.data_dir.rglob("*.log") if p.is_file()]
    return files
