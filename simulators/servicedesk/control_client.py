"""A small synchronous client for the `/_sim` control API of an out-of-process simulator.

The demo and benchmarks start the simulator as its own server; this mirrors the in-process
`SimulatorState` methods so the same set-up code reads the same either way.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx


class SimulatorControl:
    def __init__(
        self, base_url: str, *, timeout_s: float = 10.0, client: httpx.Client | None = None
    ) -> None:
        self._http = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._owned = client is None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/_sim{path}", **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(
                f"simulator control {method} {path} failed: {response.status_code} {response.text}"
            )
        return response.json() if response.content else None

    def health(self) -> bool:
        try:
            return bool(self._call("GET", "/health")["status"] == "ok")
        except (httpx.HTTPError, RuntimeError):
            return False

    def reset(self) -> None:
        self._call("POST", "/reset")

    def add_portal(
        self,
        name: str,
        api_key: str,
        edition: str = "onprem",
        *,
        accepted_note_keys: list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "api_key": api_key, "edition": edition}
        if accepted_note_keys is not None:
            body["accepted_note_keys"] = accepted_note_keys
        result: dict[str, Any] = self._call("POST", "/portals", json=body)
        return result

    def add_requests(self, portal: str, requests: list[dict[str, Any]]) -> list[str]:
        ids: list[str] = self._call(
            "POST", f"/portals/{portal}/requests", json={"requests": requests}
        )["ids"]
        return ids

    def add_request(self, portal: str, request: dict[str, Any] | None = None, **fields: Any) -> str:
        return self.add_requests(portal, [{**(request or {}), **fields}])[0]

    def get_request(self, portal: str, request_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/portals/{portal}/requests/{request_id}")
        return result

    def set_request_flags(self, portal: str, request_id: str, **flags: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "PATCH", f"/portals/{portal}/requests/{request_id}", json=flags
        )
        return result

    def set_faults(self, portal: str, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", f"/portals/{portal}/faults", json=settings)
        return result

    def update_faults(self, portal: str, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/portals/{portal}/faults", json=settings)
        return result

    def clear_faults(self, portal: str) -> None:
        self._call("DELETE", f"/portals/{portal}/faults")

    def notes(
        self, portal: str | None = None, request_id: str | None = None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"portal": portal, "request_id": request_id}.items() if v}
        notes: list[dict[str, Any]] = self._call("GET", "/notes", params=params)["notes"]
        return notes

    def calls(
        self, portal: str | None = None, method: str | None = None, path_contains: str | None = None
    ) -> list[dict[str, Any]]:
        params = {
            k: v
            for k, v in {"portal": portal, "method": method, "path_contains": path_contains}.items()
            if v
        }
        calls: list[dict[str, Any]] = self._call("GET", "/calls", params=params)["calls"]
        return calls

    def clear_calls(self) -> None:
        self._call("DELETE", "/calls")

    def fire_webhook(
        self,
        portal: str,
        request_id: str,
        url: str,
        secret: str,
        *,
        mode: str = "hmac",
        shape: str = "v3",
        event: str | None = None,
    ) -> dict[str, Any]:
        """Make the simulated portal deliver a webhook for one of its requests."""
        body = {
            "request_id": request_id,
            "url": url,
            "secret": secret,
            "mode": mode,
            "shape": shape,
            "event": event,
        }
        result: dict[str, Any] = self._call("POST", f"/portals/{portal}/webhooks", json=body)
        return result

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> SimulatorControl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
