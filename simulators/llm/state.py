"""Mutable state of the LLM simulator: accepted keys, latency, injected faults, request log,
and each key's rate limit and credit (``keys``).

A test constructs one, hands it to ``create_app`` and keeps it to inject faults and read what
the client sent. The server runs on its own thread (uvicorn) while the test thread changes the
state, hence the lock. Out of process, the ``/_sim`` control API does the same over HTTP.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from simulators.llm.key_account import KeyAccounts

FaultKind = Literal[
    "rate_limit",  # 429, optionally with Retry-After / retry-after-ms
    "no_credits",  # 402 insufficient credits (never retried by a correct client)
    "server_error",  # 500/502/503 (503 optionally with Retry-After)
    "timeout",  # hang for `seconds`, longer than the client's timeout
    "error_body",  # HTTP 200 with an `error` object and finish_reason "error"
    "empty_content",  # HTTP 200, finish_reason "stop", empty content ("no content generated")
    "malformed",  # content is JSON but violates the enhancement schema
    "not_json",  # content is prose, not JSON
    "hallucinate",  # valid answer that also cites an id the prompt never contained
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
# Faults that still produce an answer: they never make the simulator fall back to another model.
CONTENT_FAULTS = frozenset({"malformed", "not_json", "hallucinate"})


@dataclass
class Fault:
    """One injected fault. ``count=None`` means until removed; ``probability`` makes it random
    (each matching request fires it with that probability, consuming ``count`` when it does)."""

    kind: str
    count: int | None = 1
    probability: float | None = None
    model: str | None = None  # only requests served by this model
    status: int | None = None  # server_error: 500, 502 (default) or 503
    retry_after: float | None = None  # seconds, sent as Retry-After
    retry_after_ms: int | None = None  # sent as retry-after-ms
    seconds: float | None = None  # timeout: hang this long (default state.timeout_hang_s)
    citation: str = "ticket:999999"  # hallucinate: the invented id
    id: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1 or None")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RequestRecord:
    """What one completion request carried; ``authorization`` is never kept, only its verdict."""

    seq: int
    path: str
    received_at: float
    headers: dict[str, str]
    authorized: bool
    model: str | None = None
    models: list[str] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)  # every other body field
    retry_count: int | None = None  # from x-stainless-retry-count
    served_model: str | None = None
    fault: str | None = None
    status: int | None = None
    cost_usd: float = 0.0  # usage.cost of the answer, spent from the key's credit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _for_model(model: str, fault: Fault) -> bool:
    return fault.model == model


class LLMSimulatorState:
    def __init__(
        self,
        *,
        api_keys: Iterable[str] | None = None,
        latency_s: float = 0.0,
        jitter_pct: float = 0.0,
        timeout_hang_s: float = 30.0,
        prompt_price_per_mtok: float = 0.15,
        completion_price_per_mtok: float = 0.60,
        provider_name: str = "SimProvider",
        seed: int | None = 0,
    ) -> None:
        """``api_keys=None`` accepts any non-empty bearer token."""
        self._lock = threading.Lock()
        self._seed = seed
        self._rng = random.Random(seed)
        self.api_keys: set[str] | None = set(api_keys) if api_keys is not None else None
        self.latency_s = latency_s
        self.jitter_pct = jitter_pct
        self.timeout_hang_s = timeout_hang_s
        self.prompt_price_per_mtok = prompt_price_per_mtok
        self.completion_price_per_mtok = completion_price_per_mtok
        self.provider_name = provider_name
        self._faults: list[Fault] = []
        self._requests: list[RequestRecord] = []
        self._next_fault_id = 1
        self._next_seq = 1
        # per-key rate limit and credit (simulators/llm/key_account.py)
        self.keys = KeyAccounts()

    # -- configuration (test thread or control API) ------------------------------------------

    def add_fault(self, kind: str, **options: Any) -> Fault:
        fault = Fault(kind=kind, **options)
        with self._lock:
            fault.id = self._next_fault_id
            self._next_fault_id += 1
            self._faults.append(fault)
        return fault

    def fail_model(self, model: str, status: int = 502) -> Fault:
        """Every request served by ``model`` fails with ``status`` until the fault is removed."""
        return self.add_fault("server_error", model=model, status=status, count=None)

    def remove_fault(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def set_latency(self, mean_s: float, jitter_pct: float = 0.0) -> None:
        if mean_s < 0 or not 0 <= jitter_pct <= 100:
            raise ValueError("latency must be >= 0 and jitter within 0..100 %")
        self.latency_s, self.jitter_pct = mean_s, jitter_pct

    def reset(self) -> None:
        """Back to a healthy server with an empty log and no key limits (keys and prices are
        kept)."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._rng = random.Random(self._seed)
        self.keys.reset()
        self.latency_s = 0.0
        self.jitter_pct = 0.0

    # -- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- used by the app ---------------------------------------------------------------------

    def key_accepted(self, key: str) -> bool:
        if not key:
            return False
        return self.api_keys is None or key in self.api_keys

    def new_record(self, path: str, headers: dict[str, str], authorized: bool) -> RequestRecord:
        with self._lock:
            record = RequestRecord(
                seq=self._next_seq,
                path=path,
                received_at=time.time(),
                headers=headers,
                authorized=authorized,
            )
            self._next_seq += 1
            self._requests.append(record)
            return record

    def sample_latency(self) -> float:
        if self.latency_s <= 0:
            return 0.0
        spread = self.latency_s * self.jitter_pct / 100.0
        with self._lock:
            return max(0.0, self._rng.uniform(self.latency_s - spread, self.latency_s + spread))

    def pick_fault(self, candidates: list[str]) -> tuple[Fault | None, str]:
        """Choose the fault for a request and the model that serves it.

        Faults without a model apply first. Then each candidate model (the requested one, then
        OpenRouter-style ``models`` fallbacks) is tried: the first one without a failure fault
        serves, so per-model outages exercise both our fallback and OpenRouter's.
        """
        with self._lock:
            fault = self._take(lambda f: f.model is None)
            if fault is not None:
                return fault, candidates[0]
            last: Fault | None = None
            for model in candidates:
                fault = self._take(functools.partial(_for_model, model))
                if fault is None or fault.kind in CONTENT_FAULTS:
                    return fault, model
                last = fault
            return last, candidates[-1]

    def _take(self, matches: Callable[[Fault], bool]) -> Fault | None:
        for fault in self._faults:
            if not matches(fault):
                continue
            if fault.probability is not None and self._rng.random() >= fault.probability:
                continue
            fault.fired += 1
            if fault.count is not None:
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
            return fault
        return None
