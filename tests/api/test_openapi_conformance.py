"""schemathesis over the whole OpenAPI document of the Ray-free app (the Serve stack's own run
is ``tests/integration/test_openapi_fuzz.py``): no 5xx, every answer matches its documented
schema, NUL characters allowed in generated strings."""

from __future__ import annotations

import re
import subprocess


def _schemathesis(url: str, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "schemathesis",
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "10",
            "--seed",
            "14",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-allow-x00",
            "true",
            "--request-timeout",
            "20",
            "--generation-database",
            "none",
            "-H",
            f"Authorization: Bearer {token}",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


async def test_documented_surface_conforms_without_ray(served_api) -> None:
    tenant = await served_api.tenant("conform")
    runs = [
        _schemathesis(served_api.url, tenant.api_token, "--exclude-path-regex", "^/admin"),
        _schemathesis(served_api.url, served_api.admin_token, "--include-path-regex", "^/admin"),
    ]
    for result in runs:
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        summary = result.stdout[result.stdout.rfind("SUMMARY") :]
        generated = re.search(r"(\d+) generated, (\d+) passed", summary)
        assert generated and int(generated.group(1)) > 50, summary
        assert generated.group(1) == generated.group(2), summary
