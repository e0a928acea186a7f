"""The dispatch loop against real PostgreSQL, without Ray: a poisoned tenant is left out while
the others flow, a disabled tenant's jobs end skipped, the backlog is measured and published,
and the in-flight cap follows the running replicas."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from core import metric_catalogue as mc
from db.pool import tenant_transaction
from pipeline.dispatch.dispatcher import ClaimedJob, Dispatcher, DispatcherConfig
from pipeline.dispatch.scaling import BacklogReport
from pipeline.observability.metrics import InMemoryMetrics
from tests.job_rows import complete_job, enqueue_jobs


async def _enqueue(
    pool: asyncpg.Pool, tenant_id: str, count: int, *, as_webhooks: bool = False
) -> None:
    """``count`` jobs in one quiet transaction, or ``as_webhooks``: each committed on its own
    with its NOTIFY, as the ingress does."""
    if not as_webhooks:
        async with tenant_transaction(pool, tenant_id) as conn:
            await enqueue_jobs(conn, tenant_id, count)
        return
    for n in range(count):
        async with tenant_transaction(pool, tenant_id) as conn:
            await enqueue_jobs(conn, tenant_id, 1, notify=True, first=n)


async def _complete(pool: asyncpg.Pool, job: ClaimedJob) -> bool:
    return await complete_job(pool, job.tenant_id, job.id, job.lease_token)


async def _statuses(pool: asyncpg.Pool, tenant_id: str) -> list[tuple[str, str | None]]:
    async with tenant_transaction(pool, tenant_id) as conn:
        rows = await conn.fetch(
            "SELECT status, outcome FROM enhancements WHERE tenant_id = $1", tenant_id
        )
    return sorted((r["status"], r["outcome"]) for r in rows)


async def _wait_for(predicate, timeout_s: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


class Rig:
    """A Dispatcher whose 'Enhancer' completes the jobs of this test's tenants at once and
    refuses anyone else's (they go back to the queue through the normal hand-off failure)."""

    def __init__(self, pool: asyncpg.Pool, url: str, tenants: set[str]) -> None:
        self.pool, self.tenants = pool, tenants
        self.metrics = InMemoryMetrics()
        self.reports: list[BacklogReport] = []
        self.dispatcher = Dispatcher(
            pool,
            self._submit,
            listen_url=url,
            metrics=self.metrics,
            on_backlog=self.reports.append,
            config=DispatcherConfig(
                poll_s=0.2,
                reap_every_s=0.3,
                tenant_quarantine_s=1.0,
                max_inflight=64,
                target_per_replica=4,
            ),
        )

    async def _submit(self, job: ClaimedJob) -> None:
        if job.tenant_id not in self.tenants:
            raise RuntimeError("not this test's job")
        await _complete(self.pool, job)


class Poison:
    """Tenants added here cannot have a job claimed: a trigger fails the UPDATE, as a corrupt
    row or a bad value would."""

    def __init__(self, conn: asyncpg.Connection, name: str) -> None:
        self._conn, self.name = conn, name

    async def add(self, tenant_id: str) -> None:
        await self._conn.execute(f"INSERT INTO {self.name}_tenants VALUES ($1)", tenant_id)

    async def repair(self) -> None:
        await self._conn.execute(f"DELETE FROM {self.name}_tenants")


@pytest.fixture
async def poison(owner_conn: asyncpg.Connection) -> AsyncIterator[Poison]:
    name = f"test_poison_{uuid.uuid4().hex[:8]}"
    await owner_conn.execute(f"CREATE TABLE {name}_tenants (id text PRIMARY KEY)")
    await owner_conn.execute(f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$
        BEGIN
            IF NEW.status = 'running' AND EXISTS (SELECT 1 FROM {name}_tenants p
                                                   WHERE p.id = NEW.tenant_id) THEN
                RAISE EXCEPTION 'poisoned job %', NEW.id USING ERRCODE = 'data_exception';
            END IF;
            RETURN NEW;
        END $$""")
    await owner_conn.execute(
        f"CREATE TRIGGER {name} BEFORE UPDATE ON enhancements "
        f"FOR EACH ROW EXECUTE FUNCTION {name}()"
    )
    try:
        yield Poison(owner_conn, name)
    finally:
        await owner_conn.execute(f"DROP TRIGGER IF EXISTS {name} ON enhancements")
        await owner_conn.execute(f"DROP FUNCTION IF EXISTS {name}()")
        await owner_conn.execute(f"DROP TABLE IF EXISTS {name}_tenants")


async def test_a_poisoned_tenant_is_left_out_and_the_others_flow(
    pool, database, make_tenant, poison
) -> None:
    bad, good1, good2 = [(await make_tenant(p)).tenant_id for p in ("bad", "good1", "good2")]
    await poison.add(bad)
    for tenant in (bad, good1, good2):
        await _enqueue(pool, tenant, 6)
    rig = Rig(pool, database.service_url, {bad, good1, good2})
    await rig.dispatcher.start()
    try:

        async def others_done() -> bool:
            done = [await _statuses(pool, t) for t in (good1, good2)]
            return done == [[("completed", "llm")] * 6] * 2

        await _wait_for(others_done)
        assert await _statuses(pool, bad) == [("queued", None)] * 6
        assert rig.dispatcher.tenant_failures >= 1
        assert rig.metrics.counters[(mc.DISPATCH_FAILURES.name, (("tenant", bad),))] >= 1
        assert rig.dispatcher.healthy()  # the loop itself never stopped

        # the fault is repaired: the tenant returns after its quarantine
        await poison.repair()

        async def bad_done() -> bool:
            return await _statuses(pool, bad) == [("completed", "llm")] * 6

        await _wait_for(bad_done)
    finally:
        await rig.dispatcher.stop()


async def test_disabled_tenant_jobs_end_skipped_and_the_backlog_is_published(
    pool, database, make_tenant, tenant_admin
) -> None:
    off, on = (await make_tenant("off")).tenant_id, (await make_tenant("on")).tenant_id
    await _enqueue(pool, off, 4)
    await tenant_admin.disable(off, actor="test")
    rig = Rig(pool, database.service_url, {off, on})
    # measured before the loop runs: the disabled tenant's jobs are not claimable backlog
    report = await rig.dispatcher.measure_backlog()
    assert off not in report.per_tenant
    await rig.dispatcher.start()
    try:

        async def skipped() -> bool:
            return await _statuses(pool, off) == [("completed", "skipped")] * 4

        await _wait_for(skipped)
        assert (
            rig.metrics.counters[(mc.ENHANCEMENTS.name, (("status", "skipped"), ("tenant", off)))]
            == 4
        )
        await _enqueue(pool, on, 3)

        async def on_done() -> bool:
            return await _statuses(pool, on) == [("completed", "llm")] * 3

        await _wait_for(on_done)

        async def drained() -> bool:
            return bool(rig.reports) and rig.reports[-1].per_tenant.get(on, 0) == 0

        await _wait_for(drained)
        assert rig.reports[-1].is_fresh()
    finally:
        await rig.dispatcher.stop()
    async with tenant_transaction(pool, off) as conn:
        errors = {
            r["error"]
            for r in await conn.fetch("SELECT error FROM enhancements WHERE tenant_id = $1", off)
        }
    assert errors == {"tenant disabled"}


def test_the_inflight_cap_follows_running_replicas(pool) -> None:
    async def nothing(_: ClaimedJob) -> None: ...

    dispatcher = Dispatcher(
        pool,
        nothing,
        listen_url="unused",
        config=DispatcherConfig(max_inflight=256, target_per_replica=96),
    )
    assert dispatcher.inflight_limit == 256  # no report yet: the configured upper bound
    dispatcher.running_replicas = 1
    assert dispatcher.inflight_limit == 96
    dispatcher.running_replicas = 2
    assert dispatcher.inflight_limit == 192
    dispatcher.running_replicas = 8
    assert dispatcher.inflight_limit == 256  # bounded by AI_AGENTS_DISPATCH_MAX_INFLIGHT


async def test_a_dispatcher_restarted_elsewhere_requeues_and_fences_the_old_ones_jobs(
    pool, database, make_tenant
) -> None:
    tenant = (await make_tenant("moved")).tenant_id
    await _enqueue(pool, tenant, 3)
    held: list[ClaimedJob] = []
    release = asyncio.Event()

    async def stuck(job: ClaimedJob) -> None:  # the old node stops answering mid-job
        if job.tenant_id != tenant:
            raise RuntimeError("not this test's job")
        held.append(job)
        await release.wait()

    old = Dispatcher(
        pool,
        stuck,
        listen_url=database.service_url,
        config=DispatcherConfig(poll_s=0.2, reap_every_s=0.3),
    )
    await old.start()

    async def all_held() -> bool:
        return len(held) == 3

    try:
        await _wait_for(all_held)
    finally:
        await old.stop()
    new = Rig(pool, database.service_url, {tenant})  # another incarnation, another owner
    await new.dispatcher.start()
    try:
        assert new.dispatcher.recovered_on_start >= 3

        async def done() -> bool:
            return await _statuses(pool, tenant) == [("completed", "llm")] * 3

        await _wait_for(done)
    finally:
        await new.dispatcher.stop()
        release.set()
    # the old incarnation's late answer is refused: its lease token no longer matches
    assert not await _complete(pool, held[0])
