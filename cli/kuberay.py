"""`ai-agents kuberay render|validate`: a Typer sub-app the main CLI mounts as ``kuberay``.

Errors are one line on stderr and a non-zero exit code (1: invalid input or manifests,
2: usage), never a traceback. ``--json`` prints one JSON document on stdout and nothing else.
Ray's schema and the validators are imported inside the commands, so mounting this sub-app
costs the main CLI nothing at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from kuberay.problems import KubeRayConfigError
from kuberay.values import DEFAULT_VALUES_FILE

kuberay_app = typer.Typer(
    name="kuberay",
    help="Render and validate the KubeRay deployment: RayService, Secret template, Ingress, "
    "monitoring (PodMonitors, alert rules, Grafana dashboards), re-enhancement RayJob and "
    "migration Job.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code=1)


@kuberay_app.command(
    "render",
    epilog="Example: ai-agents kuberay render --values kuberay/values.yaml "
    "--values kuberay/values.production.yaml --out rendered/",
)
def render_command(
    values: list[Path] = typer.Option(
        None,
        "--values",
        "-f",
        metavar="FILE",
        help="Values file; repeat to layer files (later wins). "
        f"Default: {DEFAULT_VALUES_FILE.name} (the documented defaults).",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="DIR", help="Directory to write the YAML files into (created)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Render the manifests from values (deterministic; validated before writing) into
    OUT/base/ with a kustomization.yaml, plus a production overlay in OUT/overlays/production/."""
    from kuberay import render as render_module  # imports Ray's Serve schema: only when used
    from kuberay.kustomize import output_files
    from kuberay.values_files import load_values

    try:
        loaded = load_values(*(values or []))
        rendered = render_module.render(loaded)
        paths = render_module.write(output_files(loaded, rendered), out)
    except KubeRayConfigError as exc:
        raise _fail(exc.one_line()) from None
    except OSError as exc:
        raise _fail(f"{exc.filename or out}: {exc.strerror or exc}") from None
    if json_output:
        files = [p.relative_to(out).as_posix() for p in paths]
        typer.echo(json.dumps({"out": str(out), "files": files}, sort_keys=True))
        return
    for path in paths:
        typer.echo(f"wrote {path}")


@kuberay_app.command(
    "validate",
    epilog="Example: ai-agents kuberay validate rendered/ --json",
)
def validate_command(
    directory: Path = typer.Argument(..., metavar="DIR", help="Directory of rendered .yaml files."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Validate rendered manifests offline (CRDs strict, Serve config, core objects, rules).

    RayService/RayCluster against the vendored KubeRay CRDs with unknown fields rejected,
    serveConfigV2 against Ray Serve's schema, core objects with kubernetes-validate, and the
    Prometheus Operator objects and alert rules structurally (plus promtool if installed).
    """
    from kuberay.validation.validate import validate_dir

    try:
        report = validate_dir(directory)
    except OSError as exc:
        raise _fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(report.to_json(), sort_keys=True))
    else:
        for doc in report.documents:
            typer.echo(f"{'ok  ' if doc['ok'] else 'FAIL'} {doc['file']}: {doc['document']}")
        for error in sorted(report.errors):
            typer.echo(f"error: {error}")
        for note in report.notes:
            typer.echo(f"note: {note}")
    if not report.ok:
        count = len(report.errors)
        raise _fail(
            f"{directory}: {count} problem{'s' if count > 1 else ''} "
            f"(first: {sorted(report.errors)[0]})"
        )
