"""Import a directory of knowledge-base articles (Markdown, HTML, text) into `kb_documents`.

An article's id is its path relative to the directory, slugged (`network/VPN Setup.md` →
`network/vpn-setup`), so re-importing the same tree refreshes the same rows and an article
keeps its id when only its title or text changes. Anything that cannot become a useful search
document — an empty file, an unknown format, undecodable bytes, a file too large for
PostgreSQL's full-text index — is skipped and named in the report, never fatal for the rest.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from db.repositories.knowledge import upsert_kb_document
from pipeline.retrieval.embeddings import Embedder
from pipeline.text.ticket_text import parse_html

from .embedding import BatchEmbedding
from .outcome import ImportResult, ProgressCallback, Skipped
from .storage import require_tenant, write_batch

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}
# A tsvector may not exceed 1 MB; beyond this many characters the insert would fail.
MAX_BODY_CHARS = 500_000
MAX_TITLE_CHARS = 300
BATCH_SIZE = 100
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_H1 = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$")
_SLUG_JUNK = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class KbDocument:
    doc_id: str
    title: str
    body: str
    source_path: str
    url: str | None


def doc_id_for(relative: Path) -> str:
    """`Network/VPN Setup.md` → `network/vpn-setup`; each path segment slugged on its own."""
    parts = [*relative.parent.parts, relative.stem]
    slugs = [_SLUG_JUNK.sub("-", part.lower()).strip("-") or "doc" for part in parts]
    return "/".join(slugs)


def _clip(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def _first_line(text: str) -> str | None:
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


def _markdown(text: str) -> tuple[str | None, str]:
    """(title, body): front-matter `title:`, else the first `# ` heading outside code."""
    title = None
    front = _FRONT_MATTER.match(text)
    if front:
        found = _FRONT_TITLE.search(front.group(1))
        title = found.group(1).strip("'\"") if found else None
        text = text[front.end() :]
    in_code = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and title is None and (heading := _H1.match(line)):
            title = heading.group(1)
    first = _first_line(text)
    return title or (first.lstrip("#").strip() if first else None), text.strip()


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _Skip("not UTF-8 text", f"undecodable byte at offset {err.start}") from None


class _Skip(Exception):
    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _document(path: Path, root: Path, base_url: str | None) -> KbDocument:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise _Skip("unsupported file type", path.suffix or "no extension")
    raw = _read(path)
    if kind == "html":
        page = parse_html(raw)
        title, body = page.title or page.heading or _first_line(page.text), page.text
    elif kind == "markdown":
        title, body = _markdown(raw)
    else:
        body = raw.strip()
        title = _first_line(body)
    if not body.strip():
        raise _Skip("empty")
    if len(body) > MAX_BODY_CHARS:
        raise _Skip("too large", f"{len(body):,} characters, limit {MAX_BODY_CHARS:,}")
    relative = path.relative_to(root)
    fallback = relative.stem.replace("-", " ").replace("_", " ").strip() or relative.name
    url = f"{base_url.rstrip('/')}/{relative.as_posix()}" if base_url else None
    return KbDocument(
        doc_id=doc_id_for(relative),
        title=_clip(title or fallback),
        body=body,
        source_path=relative.as_posix(),
        url=url,
    )


def load_kb_document(
    path: Path, root: Path, *, base_url: str | None = None
) -> KbDocument | Skipped:
    """One file as a document, or why it cannot be one."""
    try:
        return _document(path, root, base_url)
    except _Skip as skip:
        return Skipped(path.relative_to(root).as_posix(), skip.reason, skip.detail)
    except OSError as err:
        return Skipped(path.relative_to(root).as_posix(), "unreadable", err.strerror)


def kb_files(root: Path) -> Iterator[Path]:
    """Every regular file below `root`, sorted; hidden entries (`.git`, `.DS_Store`) skipped
    silently because they are tooling, not content an operator would expect to see listed."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file():
                yield path


def _existing_directory(directory: Path | str) -> Path:
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"not a directory: {directory}")
    return root


async def _upsert(conn: asyncpg.Connection, doc: KbDocument, tenant_id: str) -> bool:
    return await upsert_kb_document(
        conn,
        tenant_id=tenant_id,
        doc_id=doc.doc_id,
        title=doc.title,
        body=doc.body,
        url=doc.url,
        source_path=doc.source_path,
    )


async def import_kb_directory(
    pool: asyncpg.Pool,
    tenant_id: str,
    directory: Path | str,
    *,
    base_url: str | None = None,
    progress: ProgressCallback | None = None,
    embedder: Embedder | None = None,
) -> ImportResult:
    """Upsert every supported file below `directory` as a KB document of `tenant_id`.

    `base_url`, when given, makes each document's `url` (base + relative path) so notes can
    link to the article where technicians read it.
    """
    root = await asyncio.to_thread(_existing_directory, directory)
    await require_tenant(pool, tenant_id)
    result = ImportResult("kb", tenant_id, details={"directory": str(root)})
    files = await asyncio.to_thread(lambda: list(kb_files(root)))
    owners: dict[str, str] = {}
    batch: list[KbDocument] = []

    vectors = BatchEmbedding(pool, embedder, result)

    async def flush() -> None:
        new, updated = await write_batch(
            pool, tenant_id, batch, lambda conn, doc: _upsert(conn, doc, tenant_id)
        )
        result.new += new
        result.updated += updated
        await vectors.documents([(d.doc_id, d.title, d.body) for d in batch])
        batch.clear()

    for path in files:
        result.seen += 1
        loaded = await asyncio.to_thread(load_kb_document, path, root, base_url=base_url)
        if isinstance(loaded, Skipped):
            result.skipped.append(loaded)
        elif loaded.doc_id in owners:
            result.skip(
                loaded.source_path,
                "duplicate doc_id",
                f"{loaded.doc_id!r} is already {owners[loaded.doc_id]}",
            )
        else:
            owners[loaded.doc_id] = loaded.source_path
            batch.append(loaded)
            if len(batch) >= BATCH_SIZE:
                await flush()
        if progress is not None:
            progress(result.seen, len(files))
    await flush()
    return result
