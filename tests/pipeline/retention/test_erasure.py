"""Erasure on the real PostgreSQL: after ``erase-requester``, no column of any table holds the
requester's e-mail or name for that tenant, while another tenant's data and everything that was
not about the requester stays.

The tenant's data is written the way the service writes it: webhook payloads through the
webhook parser and ``enqueue``, resolved tickets through the history writer (with vectors and
search terms), proposals and explain records through ``store_insight``, feedback and audit rows
through their repositories.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import asyncpg
import pytest

from db.pool import tenant_transaction
from db.repositories.audit import write_audit
from db.repositories.enhancements import complete, enqueue, store_insight
from db.repositories.feedback import insert_feedback
from db.repositories.knowledge import upsert_asset, upsert_kb_document
from pipeline.models import KBArticle, SimilarTicket, Ticket, TicketContext
from pipeline.note.insight import explain_record, proposals
from pipeline.retention.erasure import ErasureRequest, needles_for
from pipeline.retrieval.embeddings import WordLlamaEmbedder
from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
from pipeline.retrieval.vector_index import TicketText, store_kb_vectors, store_ticket_vectors
from pipeline.sdp.wire import parse_ticket_webhook
from pipeline.tenancy.admin import TenantAdmin, UnknownTenant

NAME = "Zebulon Quixworth"
EMAIL = "Zebulon.Quixworth@client.example"
# what must be gone: the e-mail and both halves of the name, in any case, in any column (the
# search vectors and ticket terms hold them as lower-case lexemes)
TRACES = ("zebulon", "quixworth")
JSON_COLUMNS = ("payload", "explain", "suggestions")  # the owner's connection reads them as text


@dataclass
class Seeded:
    tenant_id: str
    own_tickets: list[str]
    resolved: str  # the requester's ticket that was enhanced, then resolved into the history
    colleague: str  # another requester's ticket that mentions the requester
    colleague_job: uuid.UUID
    running_job: uuid.UUID
    running_lease: uuid.UUID
    other_history: str
    jobs: dict[str, uuid.UUID] = field(default_factory=dict)


def _webhook(ticket_id: str, subject: str, description: str, requester: dict | None) -> dict:
    request = {
        "id": ticket_id,
        "subject": subject,
        "description": f"<div>{description}</div>",
        "status": {"name": "Open"},
        "last_updated_time": {"value": "1765000000000"},
    }
    if requester is not None:
        request["requester"] = requester
    body = json.dumps({"request": request}).encode()
    return {"parsed": parse_ticket_webhook(json.loads(body), body)}


async def _enqueue(conn: asyncpg.Connection, tenant_id: str, webhook: dict) -> uuid.UUID:
    parsed = webhook["parsed"]
    queued = await enqueue(
        conn,
        tenant_id=tenant_id,
        ticket_id=parsed.ticket.ticket_id,
        event=parsed.event,
        dedupe_key=parsed.dedupe_key(),
        payload=parsed.model_dump(mode="json"),
        trace_context=None,
        trace_id=None,
        notify=False,
    )
    return queued.id


async def _seed(pool: asyncpg.Pool, owner_conn: asyncpg.Connection, tenant_id: str) -> Seeded:
    requester = {"name": NAME, "email_id": EMAIL}
    colleague = {"name": "Ada Other", "email_id": "ada.other@client.example"}
    n = uuid.uuid4().int % 10**8
    resolved, queued_ticket, running_ticket = f"{n}1", f"{n}2", f"{n}3"
    colleague_ticket, other_history = f"{n}4", f"{n}5"
    embedder = WordLlamaEmbedder()
    async with tenant_transaction(pool, tenant_id) as conn:
        jobs = {
            "resolved": await _enqueue(
                conn,
                tenant_id,
                _webhook(resolved, "VPN drops every hour", "Signed, Zebulon Quixworth", requester),
            ),
            "queued": await _enqueue(
                conn, tenant_id, _webhook(queued_ticket, "Printer jam", "Please help", requester)
            ),
            "running": await _enqueue(
                conn, tenant_id, _webhook(running_ticket, "New laptop", "For me", requester)
            ),
        }
        colleague_job = await _enqueue(
            conn,
            tenant_id,
            _webhook(
                colleague_ticket,
                "VPN drops for the finance team",
                f"Same as {NAME} ({EMAIL.lower()}) reported last week",
                colleague,
            ),
        )
        # the requester's ticket, resolved: history with vector and search terms
        history = [
            ResolvedTicket(
                resolved,
                "VPN drops every hour",
                "Zebulon Quixworth's VPN drops every hour",
                "Renewed the certificate",
                None,
                ["vpn"],
                None,
            ),
            ResolvedTicket(
                other_history,
                "Mailbox full",
                f"Shared mailbox; cc {EMAIL}",
                "Archived old mail",
                None,
                ["mail"],
                None,
            ),
        ]
        for ticket in history:
            await store_resolved_ticket(conn, tenant_id, ticket, assess=False)
        await store_ticket_vectors(
            conn,
            embedder,
            tenant_id,
            [TicketText(t.ticket_id, t.subject, t.description) for t in history],
        )
        await upsert_kb_document(
            conn,
            tenant_id=tenant_id,
            doc_id="kb-vpn",
            title="VPN certificates",
            body=f"First seen on {NAME}'s laptop. Renew the certificate in the VPN client.",
            url=None,
            source_path=None,
        )
        await store_kb_vectors(
            conn,
            embedder,
            tenant_id,
            "kb-vpn",
            "VPN certificates",
            f"First seen on {NAME}'s laptop. Renew the certificate in the VPN client.",
        )
        await upsert_asset(
            conn,
            tenant_id=tenant_id,
            network="10.20.30.40/32",
            hostname="zq-laptop",
            role="laptop",
            owner=NAME,
            location="HQ",
        )
    # the requester's finished job, its colleague's (which drew on the requester's ticket),
    # and a running one holding a lease
    await owner_conn.execute(
        """UPDATE enhancements SET status = 'completed', outcome = 'llm', finished_at = now(),
               error = $2 WHERE id = ANY($1::uuid[])""",
        [jobs["resolved"], colleague_job],
        f"note for {NAME}",
    )
    lease = uuid.uuid4()
    await owner_conn.execute(
        "UPDATE enhancements SET status = 'running', lease_token = $2, "
        "lease_expires_at = now() + interval '5 minutes' WHERE id = $1",
        jobs["running"],
        lease,
    )
    own_context = TicketContext(
        ticket=Ticket(ticket_id=resolved, requester_name=NAME, requester_email=EMAIL),
        similar_tickets=[
            SimilarTicket(
                ticket_id=other_history, subject="Mailbox full", resolution="Archived", score=0.5
            )
        ],
    )
    colleague_context = TicketContext(
        ticket=Ticket(ticket_id=colleague_ticket),
        similar_tickets=[
            SimilarTicket(
                ticket_id=resolved,
                subject="VPN drops every hour",
                resolution="Renewed the certificate",
                score=0.9,
            )
        ],
        kb_articles=[
            KBArticle(article_id="kb-vpn", title="VPN certificates", excerpt="Renew it", score=0.8)
        ],
    )
    async with tenant_transaction(pool, tenant_id) as conn:
        for job, context in ((jobs["resolved"], own_context), (colleague_job, colleague_context)):
            explain = explain_record(context, None, outcome="llm")
            explain["prompt"] = [{"role": "user", "content": f"Ticket from {NAME} <{EMAIL}>"}]
            await store_insight(
                conn,
                job,
                suggestions=proposals(context, None),
                explain=explain,
                retention_days=30,
            )
        for job, ticket, comment, technician in (
            (jobs["resolved"], resolved, "Fixed it for him", None),
            (colleague_job, colleague_ticket, f"Ask {NAME} if it recurs", EMAIL),
        ):
            await insert_feedback(
                conn,
                tenant_id=tenant_id,
                enhancement_id=job,
                ticket_id=ticket,
                feedback_type="thumbs_up",
                rating_value=None,
                technician_email=technician,
                comment=comment,
            )
        await write_audit(
            conn,
            tenant_id=tenant_id,
            actor=EMAIL,
            action="feedback.create",
            target=f"enhancement:{colleague_job}",
            outcome="success",
            details={"type": "thumbs_up"},
        )
    return Seeded(
        tenant_id,
        sorted([resolved, queued_ticket, running_ticket]),
        resolved,
        colleague_ticket,
        colleague_job,
        jobs["running"],
        lease,
        other_history,
        jobs,
    )


async def _traces_left(owner_conn: asyncpg.Connection, tenant_id: str) -> list[str]:
    """Every (table.column, trace) where a text, JSON, array or search-vector column of any
    table still holds the requester; rows of other tenants are not looked at."""
    columns = await owner_conn.fetch(
        """SELECT c.table_name, c.column_name,
                  EXISTS (SELECT 1 FROM information_schema.columns t
                           WHERE t.table_schema = 'public' AND t.table_name = c.table_name
                             AND t.column_name = 'tenant_id') AS tenanted
           FROM information_schema.columns c
           JOIN information_schema.tables tb
             ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
            AND tb.table_type = 'BASE TABLE'
           WHERE c.table_schema = 'public'
             AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY',
                                 'tsvector', 'USER-DEFINED')"""
    )
    assert {"payload", "explain", "search", "lexeme", "comment", "owner"} <= {
        c["column_name"] for c in columns
    }
    found = []
    for column in columns:
        scope = "tenant_id = $2" if column["tenanted"] else "$2::text IS NOT NULL"
        for trace in (*TRACES, EMAIL.lower()):
            hits = await owner_conn.fetchval(
                f'SELECT count(*) FROM "{column["table_name"]}" '
                f'WHERE "{column["column_name"]}"::text ILIKE $1 AND {scope}',
                f"%{trace}%",
                tenant_id,
            )
            if hits:
                found.append(f"{column['table_name']}.{column['column_name']}: {trace} x{hits}")
    return found


@pytest.fixture
async def seeded(pool, owner_conn, make_tenant) -> Seeded:
    tenant = (await make_tenant("erase")).tenant_id
    return await _seed(pool, owner_conn, tenant)


async def test_nothing_of_the_requester_remains_in_any_table(
    pool, owner_conn, make_tenant, tenant_admin: TenantAdmin, seeded: Seeded
) -> None:
    bystander = (await make_tenant("erase-other")).tenant_id  # same requester, other tenant
    await _seed(pool, owner_conn, bystander)
    assert await _traces_left(owner_conn, seeded.tenant_id)  # the search finds them before

    report = await tenant_admin.erase_requester(
        seeded.tenant_id, ErasureRequest(email=EMAIL.lower()), actor="test"
    )

    assert await _traces_left(owner_conn, seeded.tenant_id) == []
    assert report.tickets == seeded.own_tickets
    counts = report.counts
    assert counts["tickets"] == 3 and counts["jobs_erased"] == 3
    assert counts["history_deleted"] == 1 and counts["history_scrubbed"] == 1
    assert counts["jobs_stopped"] == 2  # the queued and the running one
    assert counts["embeddings_deleted"] == 2 and counts["terms_deleted"] > 0
    assert counts["kb_documents_scrubbed"] == 1 and counts["kb_chunks_deleted"] >= 1
    assert counts["assets_scrubbed"] == 1 and counts["audit_scrubbed"] == 1
    assert counts["jobs_references_dropped"] == 1 and counts["feedback_scrubbed"] == 2
    # the other tenant's data about the same person is not touched
    assert len(await _traces_left(owner_conn, bystander)) >= 10


async def test_what_was_not_about_the_requester_stays(
    pool, owner_conn, tenant_admin: TenantAdmin, seeded: Seeded
) -> None:
    await tenant_admin.erase_requester(
        seeded.tenant_id, ErasureRequest(email=EMAIL, names=["Zebulon"]), actor="test"
    )
    jobs = {
        r["id"]: {k: json.loads(v) if k in JSON_COLUMNS and v else v for k, v in r.items()}
        for r in await owner_conn.fetch(
            "SELECT id, status, outcome, error, payload, explain, suggestions, ticket_id "
            "FROM enhancements WHERE tenant_id = $1",
            seeded.tenant_id,
        )
    }
    # the requester's jobs keep their figures, lose their text, and can no longer run
    own = jobs[seeded.jobs["resolved"]]
    assert own["status"] == "completed" and own["outcome"] == "llm"
    assert own["payload"]["erased"] is True and own["payload"]["ticket"]["subject"] == ""
    assert own["explain"] is None and own["suggestions"] is None and own["error"] is None
    for key in ("queued", "running"):
        stopped = jobs[seeded.jobs[key]]
        assert (stopped["status"], stopped["outcome"]) == ("completed", "skipped")
        assert stopped["error"] == "requester data erased"
    async with tenant_transaction(pool, seeded.tenant_id) as conn:
        finished = await complete(  # the worker that held the lease finds it gone
            conn,
            seeded.running_job,
            seeded.running_lease,
            outcome="llm",
            stage_timings={},
            context_sources=None,
            model=None,
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=0.0,
            note_id=None,
        )
    assert finished is False
    # the colleague's job keeps its ticket and its KB proposal, not the requester's ticket
    colleague = jobs[seeded.colleague_job]
    assert colleague["payload"]["ticket"]["ticket_id"] == seeded.colleague
    assert "[erased]" in colleague["payload"]["ticket"]["description"]
    assert colleague["explain"] is None
    assert [p["id"] for p in colleague["suggestions"]] == ["kb-vpn"]
    # the other resolved ticket stays, rewritten, searchable by its own words
    history = await owner_conn.fetch(
        "SELECT ticket_id, description FROM ticket_history WHERE tenant_id = $1", seeded.tenant_id
    )
    assert [(r["ticket_id"], r["description"]) for r in history] == [
        (seeded.other_history, "Shared mailbox; cc [erased]")
    ]
    terms = await owner_conn.fetch(
        "SELECT lexeme FROM ticket_terms WHERE tenant_id = $1", seeded.tenant_id
    )
    assert "mailbox" in {r["lexeme"] for r in terms}
    # one audit entry names what was erased, never who
    entry = await owner_conn.fetchrow(
        "SELECT actor, target, details FROM audit_log "
        "WHERE tenant_id = $1 AND action = 'requester.erase'",
        seeded.tenant_id,
    )
    assert entry["actor"] == "test" and entry["target"].startswith("erasure:")
    details = json.loads(entry["details"])
    assert details["tickets"] == 3 and details["names_searched"] == 2
    assert not any(t in entry["details"].lower() for t in TRACES)
    assert seeded.resolved not in entry["details"]


async def test_an_unknown_tenant_is_refused_and_audited(owner_conn, tenant_admin) -> None:
    with pytest.raises(UnknownTenant):
        await tenant_admin.erase_requester(
            "no-such-tenant-x", ErasureRequest(email=EMAIL), actor="test"
        )
    denied = await owner_conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE tenant_id = 'no-such-tenant-x' "
        "AND action = 'requester.erase' AND outcome = 'denied'"
    )
    assert denied == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"email": "not-an-email"},
        {"email": 'a"b@client.example'},
        {"email": "a@b.c", "names": ["Al"]},  # too short: would erase every "al"
        {"email": "a@b.c", "names": ['Zeb "Q"']},
        {"email": "a@b.c", "names": ["x\\y z"]},
        {"email": "a@b.c", "names": ["n" * 201]},
        {"email": "a@b.c", "names": ["Name"] * 11},
        {"email": "a@b.c", "extra": 1},
    ],
)
def test_requests_that_could_erase_the_wrong_text_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        ErasureRequest(**bad)


def test_needles_are_the_email_and_distinct_names_longest_first() -> None:
    assert needles_for("z@q.example", ["Zeb  Q", "zeb q", "Zebulon", "ab"]) == [
        "z@q.example",
        "Zebulon",
        "Zeb Q",
    ]
