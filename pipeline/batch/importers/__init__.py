"""Bulk loading of a tenant's knowledge: resolved SDP tickets, KB articles, asset inventory.

Ray-free, so the `ai-agents import` commands and a Ray Job entry point run the same code:
each importer takes an asyncpg pool and a tenant id (plus an `SdpClient` for tickets),
writes through `tenant_transaction`, and returns an `ImportResult`.
"""

from pipeline.text.ticket_text import html_to_text, parse_html

from .assets import AssetRow, InventoryFormatError, import_assets_csv, parse_inventory
from .kb import KbDocument, doc_id_for, import_kb_directory, load_kb_document
from .outcome import ImportInterrupted, ImportResult, ProgressCallback, Skipped
from .tickets import (
    DEFAULT_STATUSES,
    SdpCallStats,
    import_client,
    import_resolved_tickets,
)

__all__ = [
    "DEFAULT_STATUSES",
    "AssetRow",
    "ImportInterrupted",
    "ImportResult",
    "InventoryFormatError",
    "KbDocument",
    "ProgressCallback",
    "SdpCallStats",
    "Skipped",
    "doc_id_for",
    "html_to_text",
    "import_assets_csv",
    "import_client",
    "import_kb_directory",
    "import_resolved_tickets",
    "load_kb_document",
    "parse_html",
    "parse_inventory",
]
