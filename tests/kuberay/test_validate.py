"""`ai-agents kuberay validate`: strict CRDs, Serve config, core objects, monitoring objects."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.kuberay import kuberay_app
from kuberay.capacity import advertised_cpus, worker_pod_cpus
from kuberay.render import dump_yaml, write
from kuberay.validation.prometheus_checks import promtool_problems
from kuberay.validation.strict_schemas import crd_schema
from kuberay.validation.validate import Report, validate_dir, validate_files


def mutate(rendered: dict[str, str], filename: str, old: str, new: str, count: int = 1):
    assert old in rendered[filename], old
    return {**rendered, filename: rendered[filename].replace(old, new, count)}


def edit(rendered: dict[str, str], filename: str, change, index: int = 0) -> dict[str, str]:
    docs = [d for d in yaml.safe_load_all(rendered[filename]) if d]
    change(docs[index])
    return {**rendered, filename: "---\n".join(dump_yaml(d) for d in docs)}


def errors(report: Report) -> list[str]:
    return [str(e) for e in report.errors]


def only_error(report: Report) -> str:
    assert len(report.errors) == 1, errors(report)
    return str(report.errors[0])


# ---------------------------------------------------------------------------- KubeRay CRDs


def test_rendered_output_is_valid(default_render):
    report = validate_files(default_render)
    assert report.ok, errors(report)
    assert {d["document"] for d in report.documents} >= {
        "RayService/ai-agents",
        "Secret/ai-agents-secrets",
        "Ingress/ai-agents",
        "PrometheusRule/ai-agents-alerts",
        "RayJob/ai-agents-reenhance-*",
    }


def test_misspelt_rayservice_field_fails_with_its_json_path(default_render):
    # (not enableInTreeAutoscaling: without it the groups offer only their `replicas` pods, too
    # few for the pools' max_replicas, which render sizes to maxReplicas: a second finding)
    broken = mutate(default_render, "rayservice.yaml", "rayVersion:", "rayVersin:")
    assert only_error(validate_files(broken)) == (
        "rayservice.yaml: RayService/ai-agents: spec.rayClusterConfig.rayVersin: "
        "additional property not allowed (did you mean 'rayVersion'?)"
    )


def test_misspelt_field_deep_in_a_pod_template_fails(default_render):
    def change(doc):
        template = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]
        template["spec"]["terminationGracePeriodSecond"] = 60

    report = validate_files(edit(default_render, "rayservice.yaml", change))
    assert only_error(report).endswith(
        "spec.rayClusterConfig.workerGroupSpecs[0].template.spec.terminationGracePeriodSecond: "
        "additional property not allowed (did you mean 'terminationGracePeriodSeconds'?)"
    )


def test_wrong_type_and_enum_fail(default_render):
    def change(doc):
        cluster = doc["spec"]["rayClusterConfig"]
        cluster["workerGroupSpecs"][0]["minReplicas"] = "one"
        cluster["autoscalerOptions"]["upscalingMode"] = "Fast"

    messages = errors(validate_files(edit(default_render, "rayservice.yaml", change)))
    assert any(
        "workerGroupSpecs[0].minReplicas: 'one' is not of type 'integer'" in m for m in messages
    )
    assert any('autoscalerOptions.upscalingMode: "Fast" is not one of' in m for m in messages)


def test_int_or_string_fields_accept_both(default_render):
    def change(doc):
        container = doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"][
            "containers"
        ][0]
        container["resources"]["limits"]["cpu"] = 2
        container["livenessProbe"] = {"httpGet": {"path": "/", "port": "dashboard"}}

    assert validate_files(edit(default_render, "rayservice.yaml", change)).ok


def test_strict_schema_keeps_open_maps_open():
    schema = crd_schema("RayService")
    head = schema["properties"]["spec"]["properties"]["rayClusterConfig"]["properties"][
        "headGroupSpec"
    ]["properties"]
    assert head["rayStartParams"]["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["spec"]["additionalProperties"] is False


def test_metadata_typo_fails(default_render):
    broken = mutate(default_render, "rayservice.yaml", "  labels:\n", "  lables:\n")
    assert "metadata.lables: additional property not allowed" in only_error(validate_files(broken))


# ---------------------------------------------------------------------------- serveConfigV2


def test_misspelt_serve_option_inside_serve_config_fails(default_render):
    broken = mutate(
        default_render, "rayservice.yaml", "max_ongoing_requests: 16", "max_ongoing_request: 16"
    )
    assert only_error(validate_files(broken)).endswith(
        "spec.serveConfigV2.applications[0].deployments[1].max_ongoing_request: unknown option "
        "for DeploymentSchema (did you mean 'max_ongoing_requests'?)"
    )


def test_invalid_autoscaling_inside_serve_config_fails(default_render):
    broken = mutate(default_render, "rayservice.yaml", "max_replicas: 5", "max_replicas: 0")
    message = only_error(validate_files(broken))
    assert "spec.serveConfigV2.applications[0].deployments[0].autoscaling_config" in message


def test_secret_in_serve_runtime_env_fails(default_render):
    def change(doc):
        config = yaml.safe_load(doc["spec"]["serveConfigV2"])
        config["applications"][0]["runtime_env"] = {
            "env_vars": {"AI_AGENTS_LLM_API_KEY": "sk-or-v1-abc"}
        }
        doc["spec"]["serveConfigV2"] = dump_yaml(config)

    message = only_error(validate_files(edit(default_render, "rayservice.yaml", change)))
    assert "runtime_env.env_vars.AI_AGENTS_LLM_API_KEY: secret passed by value" in message


def test_grace_period_shorter_than_graceful_shutdown_fails(default_render):
    broken = mutate(
        default_render,
        "rayservice.yaml",
        "terminationGracePeriodSeconds: 230",
        "terminationGracePeriodSeconds: 60",
        count=2,
    )
    messages = errors(validate_files(broken))
    assert len(messages) == 2
    assert "60 s is shorter than the longest graceful_shutdown_timeout_s (200 s)" in messages[0]


def test_secret_env_by_value_fails(default_render):
    def change(doc):
        env = doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0][
            "env"
        ]
        env[0] = {"name": "AI_AGENTS_ADMIN_TOKEN", "value": "hunter2"}

    message = only_error(validate_files(edit(default_render, "rayservice.yaml", change)))
    assert message.endswith(".env[0].value: secret passed by value; use valueFrom.secretKeyRef")


def test_ray_version_mismatch_fails(default_render):
    broken = mutate(default_render, "rayservice.yaml", "rayVersion: 2.60.0", "rayVersion: 2.9.0")
    assert "spec.rayClusterConfig.rayVersion: '2.9.0' differs" in only_error(validate_files(broken))


# ---------------------------------------------------------------------------- core objects


def test_core_object_typo_fails(default_render):
    broken = mutate(
        default_render, "dashboard-service.yaml", "  type: ClusterIP", "  typ: ClusterIP"
    )
    assert only_error(validate_files(broken)) == (
        "dashboard-service.yaml: Service/ai-agents-dashboard: spec.typ: "
        "additional property not allowed (did you mean 'type'?)"
    )


def test_secret_template_with_a_value_fails(default_render):
    broken = mutate(
        default_render,
        "secret-template.yaml",
        "AI_AGENTS_LLM_API_KEY: ''",
        "AI_AGENTS_LLM_API_KEY: sk-or-v1-abc",
    )
    assert "stringData.AI_AGENTS_LLM_API_KEY: has a value" in only_error(validate_files(broken))


def test_job_typo_fails(default_render):
    broken = mutate(default_render, "migration-job.yaml", "backoffLimit:", "backofLimit:")
    assert "Job/ai-agents-migrate: spec.backofLimit: additional property not allowed" in (
        only_error(validate_files(broken))
    )


def test_unknown_kind_and_bad_yaml_fail():
    report = validate_files(
        {
            "a.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
            "b.yaml": "kind: [unclosed\n",
            "c.yaml": "just a string\n",
        }
    )
    messages = errors(report)
    assert messages[0].startswith("a.yaml: Widget/w: no schema for example.com/v1 Widget")
    assert messages[1].startswith("b.yaml: invalid YAML: line 2")
    assert messages[2] == "c.yaml: document 1: a manifest must be a mapping"


def test_duplicate_objects_fail(default_render):
    files = {**default_render, "copy.yaml": default_render["dashboard-service.yaml"]}
    assert "metadata.name: duplicate of a document in copy.yaml" in only_error(
        validate_files(files)
    )


# ---------------------------------------------------------------------------- RayJob


def test_rayjob_checks_and_says_what_it_checked(default_render):
    report = validate_files(default_render)
    assert any("no RayJob CRD is vendored" in n for n in report.notes)
    broken = mutate(default_render, "rayjob-reenhance.yaml", "entrypoint:", "entrypont:")
    messages = errors(validate_files(broken))
    assert any(
        "spec.entrypont: additional property not allowed (did you mean 'entrypoint'?)" in m
        for m in messages
    )
    assert any("spec.entrypoint: required" in m for m in messages)


def test_rayjob_kuberay_rules(default_render):
    def both(doc):
        doc["spec"]["rayClusterSpec"] = {"headGroupSpec": {"template": {}}, "bogus": 1}
        doc["spec"]["suspend"] = True

    messages = errors(validate_files(edit(default_render, "rayjob-reenhance.yaml", both)))
    assert any("spec: set exactly one of rayClusterSpec and clusterSelector" in m for m in messages)
    assert any("spec.suspend: not supported with clusterSelector" in m for m in messages)
    assert any("spec.rayClusterSpec.bogus: additional property not allowed" in m for m in messages)

    def ttl(doc):
        doc["spec"]["ttlSecondsAfterFinished"] = 60

    assert "needs shutdownAfterJobFinishes: true" in only_error(
        validate_files(edit(default_render, "rayjob-reenhance.yaml", ttl))
    )


# ---------------------------------------------------------------------------- monitoring


def _rule(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["groups"][0]["rules"][0]


def test_alert_rule_requirements(default_render):
    def change(doc):
        rule = _rule(doc)
        del rule["annotations"]["runbook_url"]
        rule["labels"]["severity"] = "page"
        rule["expr"] = "sum(ai_agents_queue_dept) > 50"
        rule["fore"] = "5m"

    messages = errors(validate_files(edit(default_render, "monitoring.yaml", change, index=3)))
    at = "monitoring.yaml: PrometheusRule/ai-agents-alerts: spec.groups[0].rules[0]"
    assert f"{at}.annotations.runbook_url: required annotation" in messages
    assert f"{at}.labels.severity: required, one of ['critical', 'info', 'warning']" in messages
    assert (
        f"{at}.expr: metrics not in core/metric_catalogue.py: ['ai_agents_queue_dept']" in messages
    )
    assert f"{at}.fore: unknown rule field (did you mean 'for'?)" in messages


def test_alert_rule_promql_syntax_is_checked_with_promtool(default_render, promtool):
    def change(doc):
        _rule(doc)["expr"] = "sum(ai_agents_queue_depth > 50"

    message = only_error(validate_files(edit(default_render, "monitoring.yaml", change, index=3)))
    assert "spec.groups: promtool:" in message
    groups = [{"name": "g", "rules": [{"alert": "A", "expr": "up ==", "for": "1m"}]}]
    assert promtool_problems(groups)


def test_monitor_without_endpoints_fails(default_render):
    def change(doc):
        doc["spec"]["podMetricsEndpoints"] = []

    assert "spec.podMetricsEndpoints: required non-empty list" in only_error(
        validate_files(edit(default_render, "monitoring.yaml", change, index=0))
    )


def test_dashboard_with_unknown_metric_fails(default_render):
    broken = mutate(
        default_render,
        "monitoring.yaml",
        'ai_agents_queue_depth{tenant=~\\"$tenant\\"}',
        'ai_agents_queue_size{tenant=~\\"$tenant\\"}',
    )
    message = only_error(validate_files(broken))
    assert "ConfigMap/ai-agents-grafana-dashboards" in message
    assert "unknown metrics ['ai_agents_queue_size']" in message


# ---------------------------------------------------------------------------- CLI


def test_cli_validate_reports_json_and_fails(tmp_path, default_render):
    write(
        mutate(default_render, "rayservice.yaml", "rayVersion:", "rayVersin:"),
        tmp_path,
    )
    result = CliRunner().invoke(kuberay_app, ["validate", str(tmp_path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["errors"] == [
        {
            "file": "rayservice.yaml",
            "document": "RayService/ai-agents",
            "path": "spec.rayClusterConfig.rayVersin",
            "message": "additional property not allowed (did you mean 'rayVersion'?)",
        }
    ]
    assert any("RayJob" in note for note in report["notes"])
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {tmp_path}: 1 problem (first: rayservice.yaml")
    assert "Traceback" not in result.output


def test_cli_validate_ok_json(tmp_path, default_render):
    write(default_render, tmp_path)
    result = CliRunner().invoke(kuberay_app, ["validate", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    assert validate_dir(tmp_path).ok


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_cli_validate_bad_directory_is_one_line(tmp_path, make):
    target = tmp_path / "nope" if make == "missing" else tmp_path
    result = CliRunner().invoke(kuberay_app, ["validate", str(target)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


# ---------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("filename", "old", "new", "expected"),
    [
        (
            "service-ingress.yaml",
            "name: ai-agents-serve-svc",
            "name: ai-agents-serve",
            "Ingress/ai-agents: spec.rules[0].http.paths[0].backend.service.name: "
            "no Service 'ai-agents-serve' is created by these manifests",
        ),
        (
            "rayservice.yaml",
            "key: AI_AGENTS_ADMIN_TOKEN",
            "key: AI_AGENTS_ADMIN_TOKN",
            "Secret 'ai-agents-secrets' has no key 'AI_AGENTS_ADMIN_TOKN'",
        ),
        (
            "migration-job.yaml",
            "key: AI_AGENTS_MIGRATION_DATABASE_URL",
            "key: AI_AGENTS_MIGRATION_DATABASE_URLS",
            "Secret 'ai-agents-secrets' has no key 'AI_AGENTS_MIGRATION_DATABASE_URLS'",
        ),
        (
            "rayservice.yaml",
            "secretName: ai-agents-ray-token",
            "secretName: ai-agents-ray-tokens",
            "spec.rayClusterConfig.authOptions.secretName: Secret 'ai-agents-ray-tokens' is "
            "not among these manifests",
        ),
        (
            "monitoring.yaml",
            "ray.io/node-type: worker",
            "ray.io/node-type: workers",
            "PodMonitor/ai-agents-ray-worker: spec.selector.matchLabels: selects no pods",
        ),
        (
            "monitoring.yaml",
            "      app.kubernetes.io/component: serve",
            "      app.kubernetes.io/component: serving",
            "ServiceMonitor/ai-agents-ingress-metrics: spec.selector.matchLabels: "
            "selects no Service",
        ),
        (
            "dashboard-service.yaml",
            "app.kubernetes.io/component: ray-head",
            "app.kubernetes.io/component: head",
            "spec.selector: selects no pods of these manifests",
        ),
    ],
)
def test_dangling_references_fail(default_render, filename, old, new, expected):
    report = validate_files(mutate(default_render, filename, old, new))
    assert expected in only_error(report)
    (finding,) = report.errors
    assert [
        d["ok"]
        for d in report.documents
        if (d["file"], d["document"]) == (finding.file, finding.document)
    ] == [False]


def test_raycluster_documents_are_checked_against_their_crd(default_render):
    (service,) = yaml.safe_load_all(default_render["rayservice.yaml"])
    cluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "adhoc", "namespace": "ai-agents"},
        "spec": service["spec"]["rayClusterConfig"],
    }
    assert validate_files({"cluster.yaml": dump_yaml(cluster)}).ok
    cluster["spec"]["headGroupSpec"]["rayStartParam"] = {}
    assert only_error(validate_files({"cluster.yaml": dump_yaml(cluster)})) == (
        "cluster.yaml: RayCluster/adhoc: spec.headGroupSpec.rayStartParam: "
        "additional property not allowed (did you mean 'rayStartParams'?)"
    )


def test_unparseable_serve_config_fails(default_render):
    def change(doc):
        doc["spec"]["serveConfigV2"] = "applications: [unclosed\n"

    message = only_error(validate_files(edit(default_render, "rayservice.yaml", change)))
    assert message.startswith(
        "rayservice.yaml: RayService/ai-agents: spec.serveConfigV2: invalid YAML"
    )


def test_hand_edited_workers_that_cannot_hold_every_replica_fail(default_render):
    # 3 pods of 4 CPUs hold the 11.5 CPUs reserved in sum, but only two 1.5-CPU Enhancers fit
    # on a pod: the seventh would stay pending for ever.
    def change(doc):
        cluster = doc["spec"]["rayClusterConfig"]
        (group,) = cluster["workerGroupSpecs"]
        group["maxReplicas"] = 3
        group["rayStartParams"]["num-cpus"] = "4"
        config = yaml.safe_load(doc["spec"]["serveConfigV2"])
        (app,) = config["applications"]
        for deployment in app["deployments"]:
            if "autoscaling_config" in deployment:
                deployment["autoscaling_config"]["max_replicas"] = 1
        (enhancer,) = [d for d in app["deployments"] if d["name"] == "Enhancer"]
        enhancer["autoscaling_config"]["max_replicas"] = 7
        enhancer["ray_actor_options"]["num_cpus"] = 1.5
        doc["spec"]["serveConfigV2"] = dump_yaml(config)

    message = only_error(validate_files(edit(default_render, "rayservice.yaml", change)))
    assert "spec.rayClusterConfig.workerGroupSpecs" in message
    assert "1 of Enhancer (1.5 CPU each) would find no pod with room" in message


def test_worker_cpus_are_what_kuberay_starts_ray_with():
    # KubeRay passes the CPU limit (else request) to `ray start --num-cpus`, rounded up
    assert [advertised_cpus(q) for q in ("500m", "1500m", "2", "2000m", 3)] == [1, 2, 2, 2, 3]
    group = {
        "maxReplicas": 2,
        "replicas": 1,
        "rayStartParams": {},
        "template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "1500m"}}}]}},
    }
    assert worker_pod_cpus({"enableInTreeAutoscaling": True, "workerGroupSpecs": [group]}) == [2, 2]
    assert worker_pod_cpus({"workerGroupSpecs": [group]}) == [2]
    group["rayStartParams"]["num-cpus"] = "6"
    assert worker_pod_cpus({"workerGroupSpecs": [group]}) == [6]
    del group["template"]["spec"]["containers"][0]["resources"]
    group["rayStartParams"] = {}
    assert worker_pod_cpus({"workerGroupSpecs": [group]}) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda g: g.update(template="not a pod template"),
        lambda g: g["template"]["spec"].update(containers={"name": "ray-worker"}),
        lambda g: g.update(maxReplicas="four"),
    ],
)
def test_a_malformed_worker_group_is_reported_not_a_crash(default_render, change):
    def edit_group(doc):
        change(doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0])

    report = validate_files(edit(default_render, "rayservice.yaml", edit_group))
    assert not report.ok  # the CRD schema says what is wrong; the capacity check stays quiet


def test_worker_cpus_that_are_not_a_number_fail(default_render):
    # rayStartParams is a free map of strings in the CRD, but `ray start --num-cpus` needs a
    # number; the capacity check cannot count such a group and leaves it to this message
    def change(doc):
        doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["rayStartParams"]["num-cpus"] = (
            "lots"
        )

    message = only_error(validate_files(edit(default_render, "rayservice.yaml", change)))
    assert "workerGroupSpecs[0].rayStartParams.num-cpus: 'lots' is not a number of CPUs" in message
