"""What the KubeRay operator does for a RayService, from the operator's host: deploy the
rendered ``serveConfigV2`` through the head's dashboard (``PUT /api/serve/applications/``,
with the cluster's token), wait until the application runs, and keep reconciling: when the
dashboard answers but lists no application (a head restarted without GCS fault tolerance
forgets it), submit the config again, as KubeRay's RayService controller does.

Every request is made from a thread inside the operator host's namespace, so it passes the
rendered NetworkPolicy's rule for the KubeRay operator (the dashboard port of the head, and
nothing else).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from local_stack.hosts.netns import entered

log = logging.getLogger(__name__)
APPLICATIONS = "/api/serve/applications/"


@dataclass
class Operator:
    namespace: str
    dashboard_url: str
    token: str
    serve_config: Mapping[str, Any]
    submissions: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.dashboard_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10.0,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with entered(self.namespace), self._client() as client:
            return client.request(method, path, **kwargs)

    def submit(self, deadline_s: float = 180.0) -> None:
        """PUT the Serve config, again until ``deadline_s`` while the dashboard times out or
        answers 5xx, as KubeRay's operator reconciles until it is accepted. The first PUT
        starts Serve's controller, which on a busy node takes longer than one read timeout."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                response = self._call(
                    "PUT", APPLICATIONS, json=dict(self.serve_config), timeout=60.0
                )
                if response.status_code < 500:
                    break
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = type(exc).__name__
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Serve config was not accepted: {problem}")
            log.warning("submitting the Serve config: %s; again in 2 s", problem)
            time.sleep(2.0)
        response.raise_for_status()
        self.submissions.append(time.time())
        log.info("submitted the Serve config to %s", self.dashboard_url)

    def applications(self) -> dict[str, Any] | None:
        """The dashboard's view of the applications; None while it does not answer."""
        try:
            response = self._call("GET", APPLICATIONS)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return dict(response.json().get("applications") or {})

    def wait_running(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.applications()
            if last and all(app.get("status") == "RUNNING" for app in last.values()):
                return last
            time.sleep(2)
        raise TimeoutError(f"the Serve application is not RUNNING after {timeout_s:.0f} s: {last}")

    def reconcile_forever(self, period_s: float = 2.0) -> Operator:
        """Resubmit whenever the head answers without any application, until ``stop``."""

        def loop() -> None:
            while not self._stop.wait(period_s):
                try:
                    apps = self.applications()
                    if apps == {}:
                        log.warning("no Serve application on the head: submitting again")
                        self.submit(deadline_s=0)  # one try: this loop is the retry
                except Exception:  # noqa: BLE001 - keep reconciling, as the operator does
                    log.exception("reconcile failed")

        self._thread = threading.Thread(target=loop, name="kuberay-operator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
