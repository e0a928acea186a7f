"""Erasure on request: everything the service stored about one requester, removed or
anonymised, in one transaction of the requester's tenant.

Where a requester appears, and what happens there:

- their own tickets (known from the webhook payloads stored with their jobs, by e-mail):
  resolved tickets are deleted from the history, with their embeddings and search terms;
  their jobs keep their figures but lose every text (the payload becomes the ticket id alone,
  proposals, explain records, error text go); a job still queued or running is stopped;
  feedback comments on them go;
- other tenants' data is never read; within the tenant, any other text that names them (a
  colleague's ticket, a prompt or answer stored for ``explain``, a feedback comment, a KB
  article, an asset's owner, the audit log): each mention of the e-mail or a name becomes
  ``[erased]``; other jobs whose explain record or proposals drew on one of their tickets lose
  that record and those proposals; the vectors of rewritten history tickets and KB articles
  are deleted until ``ai-agents reindex`` rebuilds them.

The names searched for are those the requester's webhooks carried plus any the operator adds
(``names``): a mention by first name alone is found only if the operator names it. The notes in
ServiceDesk Plus are SDP's own records, outside this service.

The audit entry (``requester.erase``) names what was erased, as counts and an erasure id, never
the e-mail, a name or a ticket; the answer to the operator lists the tickets.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Annotated, Any

import asyncpg
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from db.pool import tenant_transaction
from db.repositories.audit import write_audit
from db.repositories.lifecycle import erasure as repo
from db.repositories.tenants import fetch_tenant
from pipeline.text.storable import CleanText

log = logging.getLogger(__name__)

EMAIL_PATTERN = r"^[^@\s\"\\]+@[^@\s\"\\]+\.[^@\s\"\\]+$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\"\\]")


def _plain_name(value: str) -> str:
    value = " ".join(value.split())
    if _CONTROL.search(value):
        raise ValueError("a name may not hold quotes, backslashes or control characters")
    if len(value) < 3:
        raise ValueError("a name must have at least 3 characters (shorter would erase words)")
    return value


RequesterName = Annotated[CleanText, Field(max_length=200), AfterValidator(_plain_name)]


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: CleanText = Field(
        max_length=254,
        pattern=EMAIL_PATTERN,
        description="the requester's e-mail, as SDP sent it in webhooks",
        examples=["dana.finance@client.example"],
    )
    names: list[RequesterName] = Field(
        default_factory=list,
        max_length=10,
        description="other names to erase besides those the requester's webhooks carried "
        "(e.g. a first name alone)",
        examples=[["Dana"]],
    )


class ErasureReport(BaseModel):
    """What was erased. Only the counts and the erasure id go to the audit log."""

    erasure_id: uuid.UUID
    tenant_id: str
    tickets: list[str] = Field(description="the requester's tickets (not kept in the audit log)")
    names_searched: int = Field(description="how many names besides the e-mail were searched")
    counts: dict[str, int] = Field(description="rows changed or deleted, per kind of record")


def needles_for(email: str, names: list[str]) -> list[str]:
    """The e-mail and each distinct name (case-insensitive), longest first."""
    seen: dict[str, str] = {}
    for value in [email, *names]:
        value = " ".join(value.split())
        if len(value) >= 3 and not _CONTROL.search(value):
            seen.setdefault(value.lower(), value)
    return sorted(seen.values(), key=len, reverse=True)


async def erase_requester(
    pool: asyncpg.Pool, tenant_id: str, request: ErasureRequest, *, actor: str
) -> ErasureReport:
    """Erase one requester of ``tenant_id`` (``UnknownTenant`` if there is no such tenant)."""
    await fetch_tenant(pool, tenant_id)
    erasure_id = uuid.uuid4()
    async with tenant_transaction(pool, tenant_id) as conn:
        found = await repo.requester_jobs(conn, request.email)
        tickets = sorted({r["ticket_id"] for r in found})
        names = [r["name"] for r in found if r["name"]] + list(request.names)
        needles = needles_for(request.email, names)
        counts: dict[str, int] = {"tickets": len(tickets)}
        counts |= await repo.delete_history(conn, tickets)
        _add(counts, await repo.scrub_history(conn, needles))
        counts["jobs_stopped"] = await repo.stop_jobs(conn, tickets)
        counts["jobs_erased"] = await repo.erase_jobs(conn, tickets)
        counts["jobs_references_dropped"] = await repo.drop_references(conn, tickets)
        counts["jobs_scrubbed"] = await repo.scrub_jobs(conn, needles)
        counts["feedback_scrubbed"] = await repo.scrub_feedback(conn, needles, tickets)
        counts |= await repo.scrub_knowledge(conn, needles)
        counts["audit_scrubbed"] = await repo.scrub_audit(conn, tenant_id, needles)
        await write_audit(
            conn,
            tenant_id=tenant_id,
            actor=actor,
            action="requester.erase",
            target=f"erasure:{erasure_id}",
            outcome="success",
            details={"names_searched": len(needles) - 1, **counts},
        )
    log.info(
        "requester erased",
        extra={"tenant_id": tenant_id, "erasure_id": str(erasure_id), "counts": counts},
    )
    return ErasureReport(
        erasure_id=erasure_id,
        tenant_id=tenant_id,
        tickets=tickets,
        names_searched=len(needles) - 1,
        counts=counts,
    )


def _add(counts: dict[str, int], more: dict[str, Any]) -> None:
    for key, value in more.items():
        counts[key] = counts.get(key, 0) + int(value)
