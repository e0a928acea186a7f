"""Apply the plain-SQL migrations in order, record them, and set up the service role.

Runs as the schema owner (``AI_AGENTS_MIGRATION_DATABASE_URL``). The service role named in
``AI_AGENTS_DATABASE_URL`` is created or reset here so that it owns nothing, cannot bypass RLS
and holds only the grants the service needs; running this twice changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from urllib.parse import unquote, urlparse

import asyncpg

log = logging.getLogger(__name__)
MIGRATIONS_PACKAGE = "db.migrations"
_LOCK_KEY = 0x41494147  # advisory lock so two starting replicas do not migrate at once


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied. Refuses edited history."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {r["version"]: r for r in await conn.fetch("SELECT * FROM schema_migrations")}
        done: list[str] = []
        for migration in load_migrations():
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(f"migration {migration.name} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1,$2,$3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


@dataclass(frozen=True)
class RoleCredentials:
    user: str
    password: str | None
    database: str


def credentials_from_url(url: str) -> RoleCredentials:
    parsed = urlparse(url)
    if not parsed.username:
        raise MigrationError("AI_AGENTS_DATABASE_URL must name the service role's user")
    return RoleCredentials(
        user=unquote(parsed.username),
        password=unquote(parsed.password) if parsed.password else None,
        database=(parsed.path or "/postgres").lstrip("/") or "postgres",
    )


async def ensure_service_role(conn: asyncpg.Connection, role: RoleCredentials) -> None:
    """Create or reset the service role: login, no superuser, no BYPASSRLS, owns nothing."""
    owner = await conn.fetchval("SELECT current_user")
    if role.user == owner:
        raise MigrationError("the service role must differ from the migration (owner) role")
    current = await conn.fetchrow(
        """SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolcanlogin
           FROM pg_roles WHERE rolname = $1""",
        role.user,
    )
    ident = _quote_ident(role.user)
    if current is None:
        # Defaults are NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION; a
        # non-superuser owner with CREATEROLE may not even name those attributes.
        await conn.execute(f"CREATE ROLE {ident} LOGIN")
    else:
        wanted = {
            "rolsuper": "NOSUPERUSER",
            "rolbypassrls": "NOBYPASSRLS",
            "rolcreaterole": "NOCREATEROLE",
            "rolcreatedb": "NOCREATEDB",
            "rolreplication": "NOREPLICATION",
        }
        changes = [attr for column, attr in wanted.items() if current[column]]
        if not current["rolcanlogin"]:
            changes.append("LOGIN")
        if changes:
            try:
                await conn.execute(f"ALTER ROLE {ident} {' '.join(changes)}")
            except asyncpg.InsufficientPrivilegeError as exc:
                raise MigrationError(
                    f"service role {role.user!r} has {', '.join(changes)} to remove and the "
                    "migration role may not change that; fix it as a superuser"
                ) from exc
    if role.password:
        await conn.execute(f"ALTER ROLE {ident} PASSWORD {_quote_literal(role.password)}")
    db_ident = _quote_ident(role.database)
    statements = [
        f"GRANT CONNECT ON DATABASE {db_ident} TO {ident}",
        f"GRANT USAGE ON SCHEMA public TO {ident}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON enhancements, enhancement_feedback, "
        f"ticket_history, kb_documents, assets, ticket_embeddings, kb_chunks TO {ident}",
        f"GRANT SELECT, INSERT, DELETE ON ticket_terms TO {ident}",
        f"GRANT SELECT, INSERT, UPDATE ON llm_usage, llm_usage_monthly TO {ident}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ranking_examples TO {ident}",
        f"GRANT SELECT, INSERT ON ranking_models TO {ident}",
        f"GRANT SELECT, INSERT, UPDATE ON tenants TO {ident}",
        f"GRANT SELECT ON audit_log TO {ident}",
        f"GRANT SELECT ON schema_migrations TO {ident}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ident}",
    ]
    functions = await conn.fetch(
        """SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND p.proname LIKE 'app\\_%'"""
    )
    statements += [f"GRANT EXECUTE ON FUNCTION {f['signature']} TO {ident}" for f in functions]
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)


async def migrate(owner_url: str, service_url: str) -> list[str]:
    conn = await asyncpg.connect(owner_url)
    try:
        applied = await apply_migrations(conn)
        await ensure_vector_indexes(conn)
        await ensure_service_role(conn, credentials_from_url(service_url))
        return applied
    finally:
        await conn.close()


VECTOR_INDEX_DIMENSIONS = (256,)  # the offline model's; other sizes are searched exactly


async def ensure_vector_indexes(conn: asyncpg.Connection) -> bool:
    """HNSW indexes for vector search, whenever the `vector` extension exists.

    Not a numbered migration because pgvector may be installed (by a superuser) after 0007
    ran; re-running `ai-agents migrate` then picks it up. Returns whether vector search is
    possible; when not, says why in a warning.
    """
    if not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')"
    ):
        log.warning(
            "pgvector (extension 'vector') is missing: similar-ticket and KB search "
            "are full-text only. Install it and, as a superuser, CREATE EXTENSION "
            "vector; then run ai-agents migrate again."
        )
        return False
    for dims in VECTOR_INDEX_DIMENSIONS:
        for table in ("ticket_embeddings", "kb_chunks"):
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {table}_hnsw_{dims} ON {table} USING hnsw "
                f"((embedding::vector({dims})) vector_cosine_ops) WHERE dimensions = {dims}"
            )
    return True


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
