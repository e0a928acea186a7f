"""`ai-agents ranking show|fit` as an operator runs them, against the session's database."""

from __future__ import annotations

import json

from pipeline.retrieval.ranking.features import FEATURE_NAMES
from tests.cli_runner import assert_one_line_error, run


async def test_show_names_the_model_its_weights_bar_and_calibration(cli_env, make_tenant) -> None:
    tenant = (await make_tenant("rank-show")).tenant_id
    done = run(cli_env, "ranking", "show", "--tenant", tenant, "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["model"].startswith(("default", "deployment #"))
    assert set(shown["features"]) == set(FEATURE_NAMES)
    assert {"absolute", "relative"} <= set(shown["bar"])
    assert {"slope", "llm_weight", "intercept"} == set(shown["calibration"])
    text = run(cli_env, "ranking", "show", "--tenant", tenant)
    assert text.returncode == 0 and "relevance bar: probability ≥" in text.stdout
    assert "proved_right" in text.stdout


async def test_fit_says_why_a_tenant_gets_no_model_and_errors_are_one_line(
    cli_env, make_tenant
) -> None:
    tenant = (await make_tenant("rank-fit")).tenant_id
    done = run(
        cli_env,
        "ranking",
        "fit",
        "--tenant",
        tenant,
        "--no-deployment",
        "--min-tenant-outcomes",
        "3",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert (result["tenant"], result["installed"], result["notes"]) == (tenant, False, 0)
    assert result["reason"].startswith("not enough outcomes: 0 notes, 3 needed")
    assert_one_line_error(
        run(cli_env, "ranking", "fit", "--tenant", "no-such-tenant"), "unknown tenant"
    )
    assert_one_line_error(
        run(cli_env, "ranking", "show", "--tenant", "no-such-tenant"), "unknown tenant"
    )
