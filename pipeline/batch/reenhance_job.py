"""The argument contract of the re-enhancement Ray Job (`python -m scripts.reenhance`).

`ai-agents reenhance` builds the job's argv with `job_arguments`; the job parses it back with
`build_parser` and `filters_from_args`. Both sides live here so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from pipeline.batch.reenhance_plan import (
    STATUS_FILTERS,
    ReenhanceError,
    ReenhanceFilters,
    default_status,
)

_RELATIVE = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# The shell line Ray runs must stay below Linux's 128 KiB per-argument limit.
MAX_TICKET_ARG_CHARS = 100_000


def parse_when(value: str, *, now: datetime | None = None) -> datetime:
    """ISO date or date-time (UTC unless it says otherwise), or relative: 7d, 12h, 30m ago."""
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        delta = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ReenhanceError(
            f"not a date: {value!r} (use 2024-05-01, 2024-05-01T08:00, or 7d / 12h / 30m)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_ticket_ids(text: str) -> list[str]:
    """Ids separated by commas, spaces or new lines; `#` starts a comment."""
    ids: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        ids.extend(t for t in re.split(r"[\s,;]+", line) if t)
    return list(dict.fromkeys(ids))


def job_arguments(
    filters: ReenhanceFilters,
    submission_id: str,
    *,
    max_in_flight: int | None = None,
    poll_s: float | None = None,
    fail_on_error: bool = False,
    dry_run: bool = False,
) -> list[str]:
    """The argv after `python -m scripts.reenhance` that reproduces these filters."""
    args = [
        "--tenant",
        filters.tenant_id,
        "--submission-id",
        submission_id,
        "--status",
        filters.statuses,
    ]
    if filters.since:
        args += ["--since", filters.since.isoformat()]
    if filters.until:
        args += ["--until", filters.until.isoformat()]
    if filters.thumbs_down:
        args.append("--thumbs-down")
    if filters.max_rating is not None:
        args += ["--max-rating", str(filters.max_rating)]
    if filters.ticket_ids is not None:
        joined = ",".join(filters.ticket_ids)
        if len(joined) > MAX_TICKET_ARG_CHARS:
            raise ReenhanceError(
                f"too many ticket ids for one job ({len(filters.ticket_ids)}); "
                "split the list over several submissions"
            )
        args += ["--tickets", joined]
    if filters.limit is not None:
        args += ["--limit", str(filters.limit)]
    if max_in_flight is not None:
        args += ["--max-in-flight", str(max_in_flight)]
    if poll_s is not None:
        args += ["--poll-s", str(poll_s)]
    if fail_on_error:
        args.append("--fail-on-error")
    if dry_run:
        args.append("--dry-run")
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.reenhance",
        description="Re-enhance a tenant's past enhancements (runs as a Ray Job).",
        epilog="Example: ray job submit --submission-id fix-1 -- python -m scripts.reenhance "
        "--tenant acme --submission-id fix-1 --status failed --since 7d",
    )
    parser.add_argument("--tenant", required=True)
    parser.add_argument(
        "--submission-id",
        required=True,
        help="Batch id; re-running the same id resumes, never duplicates",
    )
    parser.add_argument("--since", help="Received at or after (ISO date/time, or 7d/12h)")
    parser.add_argument("--until", help="Received before (ISO date/time, or 7d/12h)")
    parser.add_argument(
        "--status",
        choices=STATUS_FILTERS,
        help="Default: failed; any when feedback or tickets are given",
    )
    parser.add_argument("--thumbs-down", action="store_true")
    parser.add_argument("--max-rating", type=int)
    parser.add_argument("--tickets", help="Comma-separated ticket ids")
    parser.add_argument("--limit", type=int)
    parser.add_argument(
        "--max-in-flight",
        type=int,
        help="Batch jobs queued/running at once (default: half the per-tenant "
        "in-flight cap, AI_AGENTS_PER_TENANT_INFLIGHT)",
    )
    parser.add_argument("--poll-s", type=float, default=1.0)
    parser.add_argument("--fail-on-error", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    return parser


def filters_from_args(ns: argparse.Namespace) -> ReenhanceFilters:
    tickets = parse_ticket_ids(ns.tickets) if ns.tickets is not None else None
    status = ns.status or default_status(
        thumbs_down=ns.thumbs_down, max_rating=ns.max_rating, ticket_ids=tickets
    )
    return ReenhanceFilters(
        tenant_id=ns.tenant,
        since=parse_when(ns.since) if ns.since else None,
        until=parse_when(ns.until) if ns.until else None,
        statuses=status,
        thumbs_down=ns.thumbs_down,
        max_rating=ns.max_rating,
        ticket_ids=tickets,
        limit=ns.limit,
    )


def duration(minutes: float) -> str:
    if minutes < 1:
        return "under a minute"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"
