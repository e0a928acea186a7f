"""The generated references are current: each file `python -m scripts.generate_reference`
writes (settings, command line, HTTP API, openapi.json) is regenerated in memory and compared
with the committed one, and the committed openapi.json is the app's own document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import generate_reference as ref

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ref.generated_files()


@pytest.mark.parametrize("path", sorted(GENERATED), ids=str)
def test_generated_file_is_current(path: Path) -> None:
    committed = ROOT / path
    assert committed.is_file(), f"{path} is missing: run python -m scripts.generate_reference"
    if committed.read_text() != GENERATED[path]:
        pytest.fail(f"{path} differs from the code: run python -m scripts.generate_reference")


def test_openapi_json_is_the_apps_document() -> None:
    committed = json.loads((ROOT / ref.OPENAPI_JSON).read_text())
    assert committed == ref.openapi_document(), (
        "openapi.json differs from the app's OpenAPI document: "
        "run python -m scripts.generate_reference"
    )


def test_the_references_cover_what_they_claim() -> None:
    """A generator that silently printed nothing would pass the comparison above."""
    from core.settings import Settings

    settings = GENERATED[ref.SETTINGS_MD]
    for name in Settings.model_fields:
        assert f"`AI_AGENTS_{name.upper()}`" in settings
    assert str(Path.home()) not in settings  # machine-dependent defaults are described
    cli = GENERATED[ref.CLI_MD]
    commands = ["demo", "serve", "migrate", "tenant create", "import tickets", "reenhance stop",
                "reindex", "eval retrieval", "health", "explain", "kuberay render"]  # fmt: skip
    for command in commands:
        assert f"## `ai-agents {command}`" in cli, command
    api = GENERATED[ref.HTTP_API_MD]
    document = ref.openapi_document()
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in api
    assert "/webhook/servicedesk/{tenant_id}" in document["paths"]
