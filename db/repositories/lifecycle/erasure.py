"""Erasure of one requester's data: the queries, each run inside the tenant's transaction.

``needles`` are the requester's e-mail and names; ``app_mentions`` finds them in any text
(case-insensitive, literally) and ``app_erase_text`` replaces each with ``[erased]`` (migration
0012). ``tickets`` are the requester's own tickets, known from the webhook payloads stored with
their jobs. Every function returns how many rows it changed.
"""

from __future__ import annotations

import asyncpg


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def requester_jobs(conn: asyncpg.Connection, email: str) -> list[asyncpg.Record]:
    """Ticket id and requester name of every job whose webhook named this requester's e-mail
    (a scan of the tenant's jobs: erasure is rare, an index would cost every webhook)."""
    return await conn.fetch(
        """SELECT DISTINCT ticket_id, payload->'ticket'->>'requester_name' AS name
           FROM enhancements
           WHERE lower(payload->'ticket'->>'requester_email') = lower($1)""",
        email,
    )


async def delete_history(conn: asyncpg.Connection, tickets: list[str]) -> dict[str, int]:
    """The requester's resolved tickets, with their embeddings and search terms (deleted by
    the foreign keys' cascade, counted first)."""
    counts = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM ticket_embeddings WHERE ticket_id = ANY($1)) AS emb,
                  (SELECT count(*) FROM ticket_terms WHERE ticket_id = ANY($1)) AS terms""",
        tickets,
    )
    deleted = _count(
        await conn.execute("DELETE FROM ticket_history WHERE ticket_id = ANY($1)", tickets)
    )
    return {
        "history_deleted": deleted,
        "embeddings_deleted": int(counts["emb"]),
        "terms_deleted": int(counts["terms"]),
    }


async def scrub_history(conn: asyncpg.Connection, needles: list[str]) -> dict[str, int]:
    """Other resolved tickets that mention the requester: the mentions replaced (a trigger
    rewrites their search terms) and their embeddings, made from the old text, deleted until
    ``ai-agents reindex`` makes new ones."""
    row = await conn.fetchrow(
        """WITH hit AS (
               UPDATE ticket_history h
                  SET subject = app_erase_text(h.subject, $1),
                      description = app_erase_text(h.description, $1),
                      resolution = app_erase_text(h.resolution, $1),
                      tags = ARRAY(SELECT app_erase_text(t, $1) FROM unnest(h.tags) t),
                      updated_at = now()
                WHERE app_mentions(concat_ws(' ', h.subject, h.description, h.resolution,
                                             array_to_string(h.tags, ' ')), $1)
               RETURNING h.ticket_id),
           gone AS (
               DELETE FROM ticket_embeddings e USING hit WHERE e.ticket_id = hit.ticket_id
               RETURNING 1)
           SELECT (SELECT count(*) FROM hit) AS tickets, (SELECT count(*) FROM gone) AS emb""",
        needles,
    )
    return {"history_scrubbed": int(row["tickets"]), "embeddings_deleted": int(row["emb"])}


async def stop_jobs(conn: asyncpg.Connection, tickets: list[str]) -> int:
    """The requester's queued and running jobs end `completed`/`skipped`; clearing the lease
    makes a worker still running one lose it, so it stores nothing more."""
    return _count(
        await conn.execute(
            """UPDATE enhancements
                  SET status = 'completed', outcome = 'skipped', stage = 'done',
                      error = 'requester data erased', finished_at = now(), updated_at = now(),
                      lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE ticket_id = ANY($1) AND status IN ('queued', 'running')""",
            tickets,
        )
    )


async def erase_jobs(conn: asyncpg.Connection, tickets: list[str]) -> int:
    """The requester's jobs keep their figures (status, outcome, timings, tokens, cost) but
    lose everything that was text: the webhook payload becomes the ticket id alone (a
    re-enhancement reads the ticket from SDP again), the proposals and the explain record go,
    and so do the sources' notes and any error text."""
    return _count(
        await conn.execute(
            """UPDATE enhancements
                  SET payload = jsonb_build_object(
                          'erased', true, 'event', payload->'event',
                          'version', payload->'version', 'has_description', false,
                          'tags', '[]'::jsonb,
                          'ticket', jsonb_build_object(
                              'ticket_id', ticket_id, 'subject', '', 'description', '',
                              'priority', payload->'ticket'->'priority',
                              'status', payload->'ticket'->'status',
                              'updated_at', payload->'ticket'->'updated_at')),
                      suggestions = NULL, explain = NULL, context_sources = NULL,
                      error = CASE WHEN error = 'requester data erased' THEN error END,
                      updated_at = now()
                WHERE ticket_id = ANY($1)""",
            tickets,
        )
    )


async def drop_references(conn: asyncpg.Connection, tickets: list[str]) -> int:
    """Other jobs whose explain record or proposals drew on one of the requester's tickets:
    the explain record goes (its prompt quoted that ticket) and so do those proposals."""
    return _count(
        await conn.execute(
            """UPDATE enhancements e
                  SET explain = CASE WHEN refers.in_explain THEN NULL ELSE e.explain END,
                      suggestions = CASE WHEN refers.in_suggestions THEN (
                          SELECT coalesce(jsonb_agg(s ORDER BY n), '[]'::jsonb)
                            FROM jsonb_array_elements(e.suggestions) WITH ORDINALITY AS x(s, n)
                           WHERE NOT (s->>'kind' = 'ticket' AND s->>'id' = ANY($1)))
                          ELSE e.suggestions END
                 FROM (SELECT i.id,
                              jsonb_typeof(i.explain->'candidates'->'similar_tickets') = 'array'
                              AND EXISTS (
                                  SELECT 1 FROM jsonb_array_elements(
                                      i.explain->'candidates'->'similar_tickets') c
                                   WHERE c->>'ticket_id' = ANY($1)) AS in_explain,
                              jsonb_typeof(i.suggestions) = 'array' AND EXISTS (
                                  SELECT 1 FROM jsonb_array_elements(i.suggestions) s
                                   WHERE s->>'kind' = 'ticket' AND s->>'id' = ANY($1))
                                  AS in_suggestions
                         FROM enhancements i
                        WHERE NOT (i.ticket_id = ANY($1))
                          AND (i.explain IS NOT NULL OR i.suggestions IS NOT NULL)) refers
                WHERE e.id = refers.id AND (refers.in_explain OR refers.in_suggestions)""",
            tickets,
        )
    )


async def scrub_jobs(conn: asyncpg.Connection, needles: list[str]) -> int:
    """Any job that mentions the requester elsewhere (another ticket's text, a prompt, an
    answer, an error): each mention replaced."""
    return _count(
        await conn.execute(
            """UPDATE enhancements
                  SET payload = app_erase_text(payload::text, $1)::jsonb,
                      explain = app_erase_text(explain::text, $1)::jsonb,
                      suggestions = app_erase_text(suggestions::text, $1)::jsonb,
                      context_sources = app_erase_text(context_sources::text, $1)::jsonb,
                      error = app_erase_text(error, $1), updated_at = now()
                WHERE app_mentions(payload::text, $1) OR app_mentions(explain::text, $1)
                   OR app_mentions(suggestions::text, $1)
                   OR app_mentions(context_sources::text, $1) OR app_mentions(error, $1)""",
            needles,
        )
    )


async def scrub_feedback(conn: asyncpg.Connection, needles: list[str], tickets: list[str]) -> int:
    """Comments on the requester's tickets go; elsewhere mentions are replaced; a technician
    e-mail that is the requester's goes."""
    return _count(
        await conn.execute(
            """UPDATE enhancement_feedback
                  SET comment = CASE WHEN ticket_id = ANY($2) THEN NULL
                                     ELSE app_erase_text(comment, $1) END,
                      technician_email = CASE WHEN app_mentions(technician_email, $1) THEN NULL
                                              ELSE technician_email END,
                      updated_at = now()
                WHERE (ticket_id = ANY($2) AND comment IS NOT NULL)
                   OR app_mentions(comment, $1) OR app_mentions(technician_email, $1)""",
            needles,
            tickets,
        )
    )


async def scrub_knowledge(conn: asyncpg.Connection, needles: list[str]) -> dict[str, int]:
    """KB articles and asset entries that mention the requester: mentions replaced; the
    articles' chunks (text and vectors of the old wording) deleted until a reindex."""
    row = await conn.fetchrow(
        """WITH docs AS (
               UPDATE kb_documents d
                  SET title = app_erase_text(d.title, $1), body = app_erase_text(d.body, $1),
                      url = app_erase_text(d.url, $1),
                      source_path = app_erase_text(d.source_path, $1), updated_at = now()
                WHERE app_mentions(concat_ws(' ', d.title, d.body, d.url, d.source_path), $1)
               RETURNING d.doc_id),
           chunks AS (
               DELETE FROM kb_chunks c USING docs WHERE c.doc_id = docs.doc_id RETURNING 1),
           assets AS (
               UPDATE assets a
                  SET hostname = app_erase_text(a.hostname, $1), role = app_erase_text(a.role, $1),
                      owner = app_erase_text(a.owner, $1),
                      location = app_erase_text(a.location, $1), updated_at = now()
                WHERE app_mentions(concat_ws(' ', a.hostname, a.role, a.owner, a.location), $1)
               RETURNING 1)
           SELECT (SELECT count(*) FROM docs) AS docs, (SELECT count(*) FROM chunks) AS chunks,
                  (SELECT count(*) FROM assets) AS assets""",
        needles,
    )
    return {
        "kb_documents_scrubbed": int(row["docs"]),
        "kb_chunks_deleted": int(row["chunks"]),
        "assets_scrubbed": int(row["assets"]),
    }


async def scrub_audit(conn: asyncpg.Connection, tenant_id: str, needles: list[str]) -> int:
    """The tenant's audit rows that name the requester (``app_erase_audit``: the service role
    may only read the audit log)."""
    return int(await conn.fetchval("SELECT app_erase_audit($1, $2)", tenant_id, needles))
