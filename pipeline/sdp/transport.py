"""An httpx client that checks every address it connects to against the SDP URL policy.

Checking the URL when an admin sets it is not enough: a host name can resolve to a public
address then and to 169.254.169.254 a minute later (DNS rebinding). This transport resolves the
name itself, refuses the connection if any resolved address breaks the policy, and connects to
the address it checked — so what was checked is what is called. TLS still verifies the
certificate against the host name in the URL (httpcore passes the URL's host as SNI).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from core.sdp_url_policy import SdpUrlPolicy, SdpUrlRefused


class _PolicyCheckedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: SdpUrlPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self._policy = policy
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:  # one forbidden answer taints the name
            self._policy.check_address(address, host)
        failure: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise SdpUrlRefused("SDP over a Unix socket is not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_http_client(policy: SdpUrlPolicy, *, max_connections: int = 100) -> httpx.AsyncClient:
    """The client the pipeline calls SDP with. An explicit transport also means proxies from
    the environment are not used (they would make the checked address the proxy's)."""
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=max_connections))
    pool = transport._pool  # httpx offers no public way to pass httpcore a network backend
    pool._network_backend = _PolicyCheckedBackend(policy, pool._network_backend)
    return httpx.AsyncClient(transport=transport)
