"""Values of the scheduled jobs rendered beside the RayService: ``rankingFit``, the CronJob
that runs ``ai-agents ranking fit`` (kuberay/manifests/ranking_cronjob.py). Kept apart from
values.py to keep that file readable; same strictness (unknown keys fail, keys are camelCase).

The schedule is checked here as Kubernetes' CronJob controller parses it (five fields: minute,
hour, day of month, month, day of week; ``*``, lists, ranges, steps, month and weekday names;
or one of ``@yearly @annually @monthly @weekly @daily @midnight @hourly``), so a typo fails at
render time with its path instead of a CronJob the API server refuses or never fires. The time
zone is ``timeZone`` (a ``TZ=`` prefix in the schedule is refused, as Kubernetes does).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

_MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names from `lowest` on)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
_TIME_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")


def _value(text: str, low: int, high: int, names: tuple[str, ...], field: str) -> int:
    if text.upper() in names:
        return low + names.index(text.upper())
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{field} '{text}' is not in {low}-{high}")
    return int(text)


def _check_field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> None:
    for part in text.split(","):
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"{field} step '{step}' is not a positive number")
        if span in ("*", "?"):
            continue
        first, _, last = span.partition("-")
        start = _value(first, low, high, names, field)
        if last and _value(last, low, high, names, field) < start:
            raise ValueError(f"{field} range '{span}' runs backwards")


def cron_problem(schedule: str) -> str | None:
    """Why Kubernetes would refuse ``schedule``, or None."""
    text = schedule.strip()
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        return "set the time zone with timeZone, not in the schedule"
    if text.startswith("@"):
        return None if text in _MACROS else f"'{text}' is not one of {sorted(_MACROS)}"
    fields = text.split()
    if len(fields) != len(_FIELDS):
        return f"'{schedule}' has {len(fields)} fields, not 5 (minute hour dom month dow)"
    try:
        for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
            _check_field(value, name, low, high, names)
    except ValueError as exc:
        return str(exc)
    return None


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_default=True
    )


class RankingFit(_Model):
    """``cronjob-ranking-fit.yaml``: the learned ranking refitted on a schedule."""

    enabled: bool = True
    # Daily, after the night's resolutions have been recorded and away from the full hour
    # when other jobs start.
    schedule: str = "17 3 * * *"
    time_zone: str = "Etc/UTC"
    # Further arguments of `ai-agents ranking fit`, e.g. [--no-deployment] or [--dry-run].
    extra_args: list[str] = []
    # A refit is seconds of CPU; the deadline stops one that hangs on the database.
    active_deadline_seconds: int = Field(default=1800, gt=0)
    backoff_limit: int = Field(default=1, ge=0, le=10)
    # A run missed by more than this (the controller down, the cluster full) is skipped.
    starting_deadline_seconds: int = Field(default=3600, ge=10)
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=100)
    failed_jobs_history_limit: int = Field(default=3, ge=0, le=100)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        problem = cron_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, v: str) -> str:
        if not _TIME_ZONE.match(v):
            raise ValueError(f"'{v}' is not an IANA time zone name (e.g. Etc/UTC, Europe/Berlin)")
        return v

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, v: list[str]) -> list[str]:
        for arg in v:
            if arg in ("--json", "--data-dir") or arg.startswith("--data-dir="):
                raise ValueError(
                    f"'{arg}' is set by the CronJob itself (JSON output, the Secret's database)"
                )
        return v
