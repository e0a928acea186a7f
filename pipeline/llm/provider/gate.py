"""What the LLM client sees of the shared provider budget: a grant per attempt, given back with
what the provider did, or a refusal (``ProviderPaused``: the credit is gone; ``ProviderBusy``:
no capacity within the caller's deadline). ``ProviderBudgetPort`` is met by
:class:`pipeline.llm.provider.budget.ProviderBudget` in one process and by the Ray actor's
handle (``actors/rate_limiter.py``) across replicas; :class:`TenantGate` binds it to one tenant
for one call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class ProviderPaused(Exception):
    """No call may be made now: the key's credit is used up (a 402)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderBusy(Exception):
    """No grant came within the time the caller could wait."""


@dataclass(frozen=True)
class Grant:
    id: int
    waited_s: float


class ProviderBudgetPort(Protocol):
    """What the LLM client needs: :class:`ProviderBudget` in one process, the Ray actor's
    handle across replicas."""

    async def acquire(
        self, tenant_id: str, *, tokens: int, weight: int, timeout_s: float
    ) -> Grant: ...

    async def release(
        self,
        grant_id: int,
        *,
        outcome: str,
        tokens_used: int | None = None,
        retry_after_s: float | None = None,
        detail: str | None = None,
    ) -> None: ...


class TenantGate:
    """One tenant's side of the shared budget, as the LLM client uses it for one call;
    ``on_wait`` hears how long each grant took (the rate-limit wait metrics)."""

    def __init__(
        self,
        budget: ProviderBudgetPort,
        tenant_id: str,
        *,
        weight: int = 1,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.budget = budget
        self.tenant_id = tenant_id
        self.weight = weight
        self._on_wait = on_wait

    async def acquire(self, tokens: int, timeout_s: float) -> Grant:
        grant = await self.budget.acquire(
            self.tenant_id, tokens=tokens, weight=self.weight, timeout_s=timeout_s
        )
        if self._on_wait is not None:
            self._on_wait(grant.waited_s)
        return grant

    async def release(
        self,
        grant: Grant,
        *,
        outcome: str,
        tokens_used: int | None = None,
        retry_after_s: float | None = None,
        detail: str | None = None,
    ) -> None:
        await self.budget.release(
            grant.id,
            outcome=outcome,
            tokens_used=tokens_used,
            retry_after_s=retry_after_s,
            detail=detail,
        )
