"""The tickets a scale-out run sends and the check that each became exactly one note; shared by
every mode of ``benchmarks.scaleout`` (nodes added by the script or by Ray's autoscaler)."""

from __future__ import annotations

from typing import Any

from benchmarks.rig.stack import Sent
from local_stack.simulators import Simulators
from local_stack.tenants import Tenant


async def send_backlog(rig: dict[str, Any], count: int) -> list[Sent]:
    tenants = rig["tenants"]
    sent = await rig["sender"].burst(count, lambda i: tenants[i % len(tenants)])
    return [s for s in sent if s.enhancement_id]


def note_check(
    sims: Simulators,
    tenants: list[Tenant],
    sent: list[Sent],
    rows: list[dict[str, Any]],
) -> dict[str, int]:
    """Lost jobs (accepted, not completed), completed without a note, duplicate notes."""
    notes = sims.notes_by_ticket(t.id for t in tenants)
    by_id = {r["id"]: r for r in rows}
    lost = missing = duplicates = 0
    for s in sent:
        marker = f"AI-Agents enhancement {s.enhancement_id}"
        count = sum(1 for n in notes.get((s.tenant_id, s.ticket_id), []) if marker in n)
        row = by_id.get(s.enhancement_id or "")
        if row is None or row["status"] != "completed":
            lost += 1
        elif count == 0:
            missing += 1
        duplicates += max(0, count - 1)
    return {
        "lost": lost,
        "missing_notes": missing,
        "duplicate_notes": duplicates,
        "retried": sum(1 for r in rows if (r["attempts"] or 0) > 1),
    }
