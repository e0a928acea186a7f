"""`ai-agents kuberay render`: values, the generated Serve config and the manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema
from typer.testing import CliRunner

from actors import deployment_options as pool_options
from cli.kuberay import kuberay_app
from core.ingress_mode import LOG_ROTATION
from kuberay.capacity import (
    ReplicaDemand,
    replica_cpu_demand,
    replica_demands,
    unplaced_replicas,
)
from kuberay.manifests import monitoring
from kuberay.manifests.serve_config import build_serve_config, serve_config_for_local
from kuberay.problems import KubeRayConfigError
from kuberay.render import render, write
from kuberay.validation.validate import validate_dir, validate_files
from kuberay.values import (
    ALL_SECRET_KEYS,
    DEFAULT_VALUES_FILE,
    MIGRATION_SECRET_KEYS,
    PRODUCTION_VALUES_FILE,
    SERVICE_SECRET_KEYS,
    Values,
)
from kuberay.values_files import load_values, values_from_dict

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_FILES = {
    "cronjob-ranking-fit.yaml",
    "dashboard-service.yaml",
    "migration-job.yaml",
    "monitoring.yaml",
    "networkpolicy.yaml",
    "poddisruptionbudget.yaml",
    "rayjob-reenhance.yaml",
    "rayservice.yaml",
    "secret-template.yaml",
    "service-ingress.yaml",
    "serviceaccount.yaml",
}


def docs(rendered: dict[str, str], filename: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered[filename]) if d]


def rayservice(rendered: dict[str, str]) -> dict[str, Any]:
    (doc,) = docs(rendered, "rayservice.yaml")
    return doc


def serve_config(rendered: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(rayservice(rendered)["spec"]["serveConfigV2"])


def deployments(rendered: dict[str, str]) -> dict[str, dict[str, Any]]:
    (app,) = serve_config(rendered)["applications"]
    return {d["name"]: d for d in app["deployments"]}


def pod_templates(service: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = service["spec"]["rayClusterConfig"]
    return [cluster["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster["workerGroupSpecs"]
    ]


def render_error(data: dict[str, Any]) -> str:
    with pytest.raises(KubeRayConfigError) as info:
        values_from_dict(data, "values.yaml")
    return str(info.value)


# ---------------------------------------------------------------------------- values


def test_values_yaml_documents_exactly_the_defaults():
    assert load_values(DEFAULT_VALUES_FILE) == Values()


def test_misspelt_values_field_is_rejected_with_its_path():
    message = render_error({"workerGroups": [{"groupName": "pools", "maxReplica": 3}]})
    assert message == (
        "values.yaml: workerGroups[0].maxReplica: unknown field (did you mean 'maxReplicas'?)"
    )


def test_misspelt_nested_values_field_is_rejected():
    assert "autoscaler.idleTimeoutSecond: unknown field" in render_error(
        {"autoscaler": {"idleTimeoutSecond": 30}}
    )


def test_misspelt_deployment_option_override_is_rejected():
    message = render_error({"serve": {"deployments": {"Enhancer": {"max_ongoing_request": 8}}}})
    assert "serve.deployments.Enhancer.max_ongoing_request: unknown option" in message
    assert "did you mean 'max_ongoing_requests'" in message


def test_misspelt_autoscaling_override_is_rejected():
    message = render_error(
        {
            "serve": {
                "deployments": {
                    "Synthesizer": {"autoscaling_config": {"target_ongoing_request": 4}}
                }
            }
        }
    )
    assert "serve.deployments.Synthesizer.autoscaling_config.target_ongoing_request" in message


def test_override_is_validated_after_merging():
    message = render_error(
        {"serve": {"deployments": {"Enhancer": {"autoscaling_config": {"min_replicas": 20}}}}}
    )
    assert "serve.deployments.Enhancer.autoscaling_config" in message
    assert "must be greater than or equal to min_replicas (20)" in message


def test_unknown_deployment_override_is_rejected():
    assert "serve.deployments.Enhancr: unknown deployment (did you mean 'Enhancer'?)" in (
        render_error({"serve": {"deployments": {"Enhancr": {"max_ongoing_requests": 8}}}})
    )


def test_runtime_env_override_is_rejected():
    message = render_error(
        {
            "serve": {
                "deployments": {
                    "Enhancer": {
                        "ray_actor_options": {
                            "runtime_env": {"env_vars": {"AI_AGENTS_LLM_API_KEY": "x"}}
                        }
                    }
                }
            }
        }
    )
    assert "ray_actor_options.runtime_env: not allowed" in message


@pytest.mark.parametrize(
    "key", ["AI_AGENTS_LLM_API_KEY", "AI_AGENTS_DATABASE_URL", "SMTP_PASSWORD"]
)
def test_secret_looking_env_in_values_is_rejected(key):
    assert "looks like a secret" in render_error({"env": {key: "value"}})


def test_worker_group_bounds_are_checked():
    assert "need minReplicas <= replicas <= maxReplicas" in render_error(
        {"workerGroups": [{"groupName": "pools", "replicas": 9, "maxReplicas": 4}]}
    )


def test_ray_version_must_match_the_pinned_ray():
    assert "rayVersion: '2.9.0' differs" in render_error({"rayVersion": "2.9.0"})


def test_ingress_may_not_publish_metrics():
    assert "would publish /metrics" in render_error({"ingress": {"paths": ["/"]}})


def test_values_files_layer_later_wins(tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text(
        "namespace: staging\nworkerGroups:\n  - groupName: big\n    maxReplicas: 8\n"
    )
    values = load_values(DEFAULT_VALUES_FILE, override)
    assert values.namespace == "staging"
    assert [g.group_name for g in values.worker_groups] == ["big"]
    assert values.image == Values().image


def test_worker_capacity_must_hold_every_pool_at_max():
    values = values_from_dict(
        {
            "workerGroups": [
                {"groupName": "pools", "maxReplicas": 1, "resources": {"limits": {"cpu": "1"}}}
            ]
        }
    )
    with pytest.raises(KubeRayConfigError, match="worker groups offer 1 CPUs"):
        render(values)


def test_worker_pods_must_hold_every_replica_whole():
    # 12 CPUs at maxReplicas hold the 11.8 reserved, but a 4-CPU pod takes only two 1.5-CPU
    # Enhancers: the seventh would stay pending forever, so render refuses.
    values = values_from_dict(
        {
            "workerGroups": [
                {"groupName": "pools", "maxReplicas": 3, "resources": {"limits": {"cpu": "4"}}}
            ],
            "serve": {
                "deployments": {
                    "Enhancer": {
                        "autoscaling_config": {"max_replicas": 7},
                        "ray_actor_options": {"num_cpus": 1.5},
                    }
                }
            },
        }
    )
    with pytest.raises(KubeRayConfigError, match=r"1 of Enhancer \(1.5 CPU each\)"):
        render(values)
    # one more pod and it fits
    values.worker_groups[0].max_replicas = 4
    assert "rayservice.yaml" in render(values)


def test_first_fit_decreasing_honours_replicas_per_node():
    demands = [
        ReplicaDemand("Enhancer", replicas=3, cpus=1, per_node=1),
        ReplicaDemand("Ingress", replicas=4, cpus=0.5),
    ]
    # Two 4-CPU pods: CPU for everything, but at most one Enhancer per pod.
    assert unplaced_replicas(demands, [4, 4]) == {"Enhancer": 1}
    assert unplaced_replicas(demands, [4, 4, 1]) == {}
    # largest first: on [1, 1.5] the 1-CPU replica takes the first pod, the rest fill the other
    assert unplaced_replicas([ReplicaDemand("A", 1, 1), ReplicaDemand("B", 3, 0.5)], [1, 1.5]) == {}


# ---------------------------------------------------------------------------- output


def test_default_and_production_renders_validate(default_render, production_render):
    for rendered in (default_render, production_render):
        assert set(rendered) == EXPECTED_FILES
        report = validate_files(rendered)
        assert report.ok, [str(e) for e in report.errors]


def test_rendering_is_deterministic(default_render):
    values = load_values(PRODUCTION_VALUES_FILE)
    assert render(values) == render(values)
    assert render() == default_render


def test_rendering_is_byte_identical_across_processes(default_render, tmp_path):
    code = (
        "import sys; from pathlib import Path; from kuberay.render import render, write; "
        "write(render(), Path(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env, check=True)
    for name, text in default_render.items():
        assert (tmp_path / name).read_bytes() == text.encode("utf-8"), name


def test_serve_config_is_generated_from_pool_options(default_render):
    config = serve_config(default_render)
    ServeDeploySchema.model_validate(config)
    (app,) = config["applications"]
    assert app["name"] == pool_options.APP_NAME
    assert app["import_path"] == pool_options.IMPORT_PATH
    assert app["route_prefix"] == pool_options.ROUTE_PREFIX
    assert "runtime_env" not in app
    # the default worker group: 2-CPU pods up to maxReplicas 4, 8 CPUs, every pool at 5 x
    # min_replicas packs onto them (6 would not: 0.2 + 6 x 1.3 = 8.0 CPUs do not pack)
    assert deployments(default_render) == {
        name: {"name": name, **options}
        for name, options in pool_options.sized_pool_options(5, 8.0).items()
    }
    assert config["proxy_location"] == "EveryNode"
    assert config["http_options"] == {
        "host": "0.0.0.0",
        "port": 8000,
        "request_timeout_s": 30.0,
        "keep_alive_timeout_s": 90,
    }
    assert config["logging_config"]["encoding"] == "JSON"


def test_one_replica_of_every_pool_fits_the_reference_node_and_does_not_scale_on_it():
    # each replica reserves what it uses: one of each pool fits a 2-CPU node with room for
    # Ray's own processes, and there the pools do not grow (more replicas on the same two
    # cores add processes, not throughput)
    at_min = pool_options.cpus_at_scale(1)
    assert 1.0 <= at_min <= 0.8 * pool_options.REFERENCE_NODE_CPUS
    assert pool_options.node_scale(pool_options.REFERENCE_NODE_CPUS) == 1
    assert pool_options.node_scale(4) == 2 and pool_options.node_scale(16) == 12
    assert pool_options.node_scale(1000) == pool_options.MAX_SCALE
    for cpus in (2, 3, 4, 8, 16, 32):
        scale = pool_options.node_scale(cpus)
        assert pool_options.cpus_at_scale(scale) <= cpus or scale == 1
        assert scale == pool_options.MAX_SCALE or pool_options.cpus_at_scale(scale + 1) > cpus


@pytest.mark.parametrize(("pod_cpus", "max_pods"), [(2, 1), (2, 4), (4, 3), (8, 10)])
def test_every_pool_at_max_replicas_fits_the_worker_groups_at_max_replicas(pod_cpus, max_pods):
    # the rule now: render sizes max_replicas to the worker groups, the largest scale at which
    # every pool at its max still packs onto the pods, each replica whole on one pod
    values = values_from_dict(
        {
            "workerGroups": [
                {
                    "groupName": "workers",
                    "replicas": 1,
                    "minReplicas": 1,
                    "maxReplicas": max_pods,
                    "resources": {
                        "requests": {"cpu": str(pod_cpus), "memory": "4Gi"},
                        "limits": {"cpu": str(pod_cpus), "memory": "4Gi"},
                    },
                }
            ]
        }
    )
    config = build_serve_config(values)
    pods = [float(pod_cpus)] * max_pods
    (app,) = config["applications"]
    demands = replica_demands(config)
    assert not unplaced_replicas(demands, pods)
    assert replica_cpu_demand(config) <= sum(pods)
    for deployment in app["deployments"]:
        policy = (deployment.get("autoscaling_config") or {}).get("policy")
        if policy:  # the policy knows its replica's CPUs and the cluster's at its largest
            assert (
                policy["policy_kwargs"]["cpus_per_replica"]
                == (deployment["ray_actor_options"]["num_cpus"])
            )
            assert policy["policy_kwargs"]["max_cluster_cpus"] == sum(pods)
    scale = next(d for d in app["deployments"] if d["name"] == "Enhancer")
    bigger = pool_options.sized_pool_options(scale["autoscaling_config"]["max_replicas"] + 1)
    more = [{"name": n, **o} for n, o in bigger.items()]
    too_many = replica_demands({"applications": [{"deployments": more}]})
    assert unplaced_replicas(too_many, pods) or scale["autoscaling_config"]["max_replicas"] == (
        pool_options.MAX_SCALE
    )


def test_changing_pool_options_changes_the_rendered_serve_config(monkeypatch):
    enhancer = pool_options._POOL_OPTIONS[pool_options.ENHANCER]
    monkeypatch.setitem(
        enhancer,
        "autoscaling_config",
        {**enhancer["autoscaling_config"], "min_replicas": 2, "target_ongoing_requests": 8},
    )
    monkeypatch.setitem(enhancer, "graceful_shutdown_timeout_s", 400)
    rendered = render()
    autoscaling = deployments(rendered)["Enhancer"]["autoscaling_config"]
    assert autoscaling["min_replicas"] == 2
    assert autoscaling["max_replicas"] % 2 == 0  # sized as a multiple of min_replicas
    assert autoscaling["target_ongoing_requests"] == 8
    for template in pod_templates(rayservice(rendered)):
        assert template["spec"]["terminationGracePeriodSeconds"] == 430


def test_values_override_changes_one_pool_only(default_render):
    values = values_from_dict(
        {
            "serve": {
                "deployments": {
                    "Enhancer": {
                        "autoscaling_config": {"max_replicas": 12},
                        "max_queued_requests": 512,
                    }
                }
            }
        }
    )
    rendered = render(values)
    enhancer = deployments(rendered)["Enhancer"]
    assert enhancer["autoscaling_config"]["max_replicas"] == 12
    assert enhancer["autoscaling_config"]["min_replicas"] == 1  # merged, not replaced
    assert enhancer["max_queued_requests"] == 512
    synthesizer, before = deployments(rendered)["Synthesizer"], deployments(default_render)
    # the Enhancer's 12 x 0.5 CPUs take the room: the other pools' max_replicas shrink to fit
    assert synthesizer["autoscaling_config"].pop("max_replicas") == 2  # 5 without the override
    before["Synthesizer"]["autoscaling_config"].pop("max_replicas")
    assert synthesizer == before["Synthesizer"]


def test_override_can_swap_autoscaling_for_fixed_replicas():
    values = values_from_dict(
        {
            "serve": {
                "deployments": {"ContextGatherer": {"autoscaling_config": None, "num_replicas": 3}}
            }
        }
    )
    gatherer = deployments(render(values))["ContextGatherer"]
    assert gatherer["num_replicas"] == 3
    assert "autoscaling_config" not in gatherer


def plain_env(rendered):
    containers = (t["spec"]["containers"][0] for t in pod_templates(rayservice(rendered)))
    return [{e["name"]: e.get("value") for e in c["env"] if "value" in e} for c in containers]


def test_haproxy_ingress_mode_sets_the_flags_in_every_ray_container(default_render):
    proxy = render(values_from_dict({"serve": {"ingressMode": "proxy"}}))
    assert all("RAY_SERVE_ENABLE_HA_PROXY" not in env for env in plain_env(proxy))
    for env in plain_env(default_render):  # HAProxy is the default
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    rendered = render(
        values_from_dict(
            {"serve": {"ingressMode": "haproxy"}, "env": {"RAY_SERVE_LOG_TO_STDERR": "0"}}
        )
    )
    for env in plain_env(rendered):  # head and worker group
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
        assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
        assert env["RAY_SERVE_LOG_TO_STDERR"] == "0"  # the operator's env wins
        # HAProxy runs through the launcher that binds its stats to loopback, bounds clients
        assert env["RAY_SERVE_HAPROXY_BINARY_PATH"] == "/usr/local/bin/ai-agents-haproxy"
        assert env["RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S"] == "30"
    assert validate_files(rendered).ok


def test_the_clusters_own_ranges_are_refused_sdp_addresses_and_its_pods_trusted_proxies(
    default_render,
):
    for env in plain_env(default_render):
        assert env["AI_AGENTS_SDP_REFUSED_NETWORKS"] == "10.244.0.0/16,10.96.0.0/12"
        assert env["AI_AGENTS_TRUSTED_PROXIES"] == "10.244.0.0/16"
    rendered = render(
        values_from_dict(
            {
                "clusterNetwork": {
                    "podCidrs": ["172.20.0.0/16"],
                    "serviceCidrs": ["172.21.0.0/16"],
                    "extraRefusedCidrs": ["10.50.0.0/24"],
                },
                "env": {"AI_AGENTS_TRUSTED_PROXIES": "172.20.5.0/24"},
            }
        )
    )
    for env in plain_env(rendered):
        assert env["AI_AGENTS_SDP_REFUSED_NETWORKS"] == "172.20.0.0/16,172.21.0.0/16,10.50.0.0/24"
        assert env["AI_AGENTS_TRUSTED_PROXIES"] == "172.20.5.0/24"  # the operator's env wins
    with pytest.raises(KubeRayConfigError, match="CIDR"):
        values_from_dict({"clusterNetwork": {"podCidrs": ["10.244.0.0/33"]}})


def test_every_ray_container_rotates_its_logs_and_the_operator_may_change_it(default_render):
    def plain_env(rendered):
        containers = (t["spec"]["containers"][0] for t in pod_templates(rayservice(rendered)))
        return [{e["name"]: e.get("value") for e in c["env"] if "value" in e} for c in containers]

    for env in plain_env(default_render):  # head and worker group: workers' logs rotate too
        assert env["RAY_ROTATION_MAX_BYTES"] == LOG_ROTATION["RAY_ROTATION_MAX_BYTES"]
        assert env["RAY_ROTATION_BACKUP_COUNT"] == LOG_ROTATION["RAY_ROTATION_BACKUP_COUNT"]
    rendered = render(values_from_dict({"env": {"RAY_ROTATION_MAX_BYTES": "1048576"}}))
    assert all(env["RAY_ROTATION_MAX_BYTES"] == "1048576" for env in plain_env(rendered))


def test_rayservice_cluster_shape(default_render):
    service = rayservice(default_render)
    spec = service["spec"]
    assert service["apiVersion"] == "ray.io/v1"
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    cluster = spec["rayClusterConfig"]
    assert cluster["rayVersion"] == "2.60.0"
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["autoscalerOptions"]["upscalingMode"] == "Default"
    assert cluster["autoscalerOptions"]["idleTimeoutSeconds"] == 60
    pinned = {
        "node-manager-port": "8077",
        "object-manager-port": "8076",
        "min-worker-port": "10002",
        "max-worker-port": "19999",
        "dashboard-agent-listen-port": "52365",
        "dashboard-agent-grpc-port": "8078",
        "metrics-export-port": "8080",
        "runtime-env-agent-port": "8079",
    }
    assert cluster["headGroupSpec"]["rayStartParams"] == {
        "num-cpus": "0",
        "dashboard-host": "0.0.0.0",
        "dashboard-port": "8265",
        "ray-client-server-port": "10001",
        **pinned,
    }
    assert cluster["workerGroupSpecs"][0]["rayStartParams"] == pinned
    assert cluster["authOptions"] == {"mode": "token", "secretName": "ai-agents-ray-token"}
    assert "gcsFaultToleranceOptions" not in cluster  # needs a Redis: off by default
    (group,) = cluster["workerGroupSpecs"]
    assert (group["minReplicas"], group["replicas"], group["maxReplicas"]) == (1, 1, 4)
    head, worker = (t["spec"]["containers"][0] for t in pod_templates(service))
    assert {p["name"]: p["containerPort"] for p in head["ports"]} == {
        "gcs-server": 6379,
        "dashboard": 8265,
        "client": 10001,
        "serve": 8000,
        "metrics": 8080,
        "as-metrics": 44217,
        "dash-metrics": 44227,
    }
    assert {p["name"]: p["containerPort"] for p in worker["ports"]} == {
        "serve": 8000,
        "metrics": 8080,
    }
    for container in (head, worker):
        assert container["lifecycle"]["preStop"]["exec"]["command"][-1] == "ray stop"
        assert container["resources"]["limits"]["memory"] == "4Gi"
        assert "local_raylet_healthz" in container["livenessProbe"]["exec"]["command"][-1]
    assert "gcs_healthz" in head["readinessProbe"]["exec"]["command"][-1]
    assert "localhost:8000/-/healthz" in worker["readinessProbe"]["exec"]["command"][-1]
    longest = max(
        d.get("graceful_shutdown_timeout_s", 20) for d in deployments(default_render).values()
    )
    for template in pod_templates(service):
        assert template["spec"]["terminationGracePeriodSeconds"] >= longest + 30
    assert spec["serveService"]["metadata"]["name"] == "ai-agents-serve-svc"


def test_secrets_are_only_referenced_never_rendered(monkeypatch, production_with_gcs_ft):
    sentinels = {key: f"sk-or-v1-SENTINEL-{key}" for key in ALL_SECRET_KEYS}
    for key, value in sentinels.items():
        monkeypatch.setenv(key, value)
    rendered = render(load_values(PRODUCTION_VALUES_FILE, production_with_gcs_ft))
    blob = "\n".join(rendered.values())
    assert "SENTINEL" not in blob
    secret, token, *_ = docs(rendered, "secret-template.yaml")
    assert secret["stringData"] == dict.fromkeys(sorted({*ALL_SECRET_KEYS, "REDIS_PASSWORD"}), "")
    assert token["metadata"]["name"] == "ai-agents-ray-token"
    assert token["stringData"] == {"auth_token": ""}
    service = rayservice(rendered)
    assert "runtime_env" not in service["spec"]["serveConfigV2"]
    for template in pod_templates(service):
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert not {k for k in env if k in ALL_SECRET_KEYS}, "secrets only as files"
        assert all("valueFrom" not in e for e in env.values())
        assert env["AI_AGENTS_SECRETS_DIR"]["value"] == "/etc/ai-agents/secrets"
        assert {"name": "secrets", "mountPath": "/etc/ai-agents/secrets", "readOnly": True} in (
            container["volumeMounts"]
        )
        (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "secrets"]
        sources = [s["secret"] for s in volume["projected"]["sources"]]
        assert {s["name"] for s in sources} == {"ai-agents-secrets"}
        keys = {item["key"]: s.get("optional", False) for s in sources for item in s["items"]}
        assert keys == {
            key: key in ("AI_AGENTS_LLM_API_KEY", "AI_AGENTS_METRICS_TOKEN")
            for key in SERVICE_SECRET_KEYS
        }
        assert volume["projected"]["defaultMode"] == 0o440
    (job,) = docs(rendered, "migration-job.yaml")
    pod = job["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    keys = {item["key"] for s in volume["projected"]["sources"] for item in s["secret"]["items"]}
    assert keys == set(MIGRATION_SECRET_KEYS)
    assert not {e["name"] for e in pod["containers"][0]["env"]} & set(ALL_SECRET_KEYS)


def test_companion_objects(production_render):
    (ingress,) = docs(production_render, "service-ingress.yaml")
    assert ingress["spec"]["tls"] == [
        {"hosts": ["ai-agents.acme-msp.example"], "secretName": "ai-agents-tls"}
    ]
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert {p["backend"]["service"]["name"] for p in paths} == {"ai-agents-serve-svc"}
    assert "/metrics" not in {p["path"] for p in paths}
    (dashboard,) = docs(production_render, "dashboard-service.yaml")
    assert dashboard["spec"]["type"] == "ClusterIP"
    assert dashboard["spec"]["ports"][0]["port"] == 8265
    (job,) = docs(production_render, "rayjob-reenhance.yaml")
    assert job["kind"] == "RayJob"
    assert job["spec"]["entrypoint"] == "python -m scripts.reenhance --tenant ${TENANT}"
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": "${RAYCLUSTER_NAME}"}
    assert job["spec"]["shutdownAfterJobFinishes"] is False
    assert (
        "ai-agents-head-svc.ai-agents-production.svc:8265"
        in production_render["rayjob-reenhance.yaml"]
    )
    (migrate,) = docs(production_render, "migration-job.yaml")
    assert migrate["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "ai-agents",
        "migrate",
    ]


def test_monitoring_objects(production_render):
    by_kind = {}
    for doc in docs(production_render, "monitoring.yaml"):
        by_kind.setdefault(doc["kind"], []).append(doc)
    head, worker = by_kind["PodMonitor"]
    assert [e["port"] for e in head["spec"]["podMetricsEndpoints"]] == [
        "metrics",
        "as-metrics",
        "dash-metrics",
    ]
    assert [e["port"] for e in worker["spec"]["podMetricsEndpoints"]] == ["metrics"]
    assert head["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (monitor,) = by_kind["ServiceMonitor"]
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "serve",
            "path": "/metrics",
            "interval": "30s",
            "authorization": {
                "type": "Bearer",
                "credentials": {"name": "ai-agents-secrets", "key": "AI_AGENTS_METRICS_TOKEN"},
            },
        }
    ]
    secret_keys = next(iter(docs(production_render, "secret-template.yaml")))["stringData"]
    assert "AI_AGENTS_METRICS_TOKEN" in secret_keys  # the key Prometheus reads exists
    serve_labels = rayservice(production_render)["spec"]["serveService"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= serve_labels.items()
    (rule,) = by_kind["PrometheusRule"]
    source = yaml.safe_load(monitoring.ALERTS_FILE.read_text())["groups"]
    base = load_values(PRODUCTION_VALUES_FILE).monitoring.runbook_base_url
    for group in source:  # the rendered rule adds the namespace label and moves the runbooks
        for alert in group["rules"]:
            alert["labels"]["namespace"] = "ai-agents-production"
            page = alert["annotations"]["runbook_url"].rstrip("/").rsplit("/", 1)[1]
            alert["annotations"]["runbook_url"] = f"{base}/{page}/"
    assert rule["spec"]["groups"] == source
    configmap, *ray_boards = by_kind["ConfigMap"]  # ours, then Ray's own (test_ray_dashboards)
    assert len(ray_boards) == 3
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    for filename in monitoring.DASHBOARD_FILES:
        embedded = json.loads(configmap["data"][f"ai-agents-{filename}"])
        assert embedded == json.loads((monitoring.DASHBOARDS_DIR / filename).read_text())


def test_optional_files_can_be_disabled():
    rendered = render(
        values_from_dict(
            {
                "ingress": {"enabled": False},
                "monitoring": {"enabled": False},
                "networkPolicy": {"enabled": False},
                "createServiceAccount": False,
                "podDisruptionBudget": {"enabled": False},
                "rankingFit": {"enabled": False},
            }
        )
    )
    assert set(rendered) == EXPECTED_FILES - {
        "cronjob-ranking-fit.yaml",
        "service-ingress.yaml",
        "monitoring.yaml",
        "networkpolicy.yaml",
        "serviceaccount.yaml",
        "poddisruptionbudget.yaml",
    }


def _unsized(applications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The applications without what sizing to the worker groups sets (max_replicas, and the
    cluster's CPUs at its largest in the policy's arguments)."""
    applications = json.loads(json.dumps(applications))
    for app in applications:
        for deployment in app["deployments"]:
            autoscaling = deployment.get("autoscaling_config") or {}
            autoscaling.pop("max_replicas", None)
            kwargs = (autoscaling.get("policy") or {}).get("policy_kwargs") or {}
            kwargs.pop("max_cluster_cpus", None)
    return applications


def test_serve_config_for_local_has_the_same_applications(default_render):
    # the same applications, not sized to worker groups a single machine does not have: the
    # policy reads that machine's CPUs from Ray and never asks past them
    local = serve_config_for_local()
    ServeDeploySchema.model_validate(local)
    assert _unsized(local["applications"]) == _unsized(serve_config(default_render)["applications"])
    (app,) = local["applications"]
    assert all(
        "max_cluster_cpus" not in d["autoscaling_config"]["policy"]["policy_kwargs"]
        for d in app["deployments"]
        if d.get("autoscaling_config")
    )
    assert local["http_options"]["host"] == "127.0.0.1"
    values = load_values(PRODUCTION_VALUES_FILE)
    assert _unsized(serve_config_for_local(values)["applications"]) == _unsized(
        serve_config(render(values))["applications"]
    )


# ---------------------------------------------------------------------------- CLI


def test_cli_render_then_validate(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        kuberay_app,
        ["render", "--values", str(PRODUCTION_VALUES_FILE), "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["files"]) == (
        {f"base/{name}" for name in EXPECTED_FILES}
        | {
            "base/kustomization.yaml",
            "overlays/production/kustomization.yaml",
            "alertmanager/alertmanagerconfig.yaml",
            "alertmanager/alertmanager.yml",
        }
    )
    assert validate_dir(out).ok and validate_dir(out / "base").ok
    result = runner.invoke(kuberay_app, ["validate", str(out)])
    assert result.exit_code == 0, result.output
    assert "ok   rayservice.yaml: RayService/ai-agents" in result.stdout


def test_cli_render_defaults_without_values(tmp_path):
    result = CliRunner().invoke(kuberay_app, ["render", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "base" / "rayservice.yaml").read_text() == render()["rayservice.yaml"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "workerGroups:\n  - groupName: pools\n    maxReplica: 3\n",
            "workerGroups[0].maxReplica: unknown field (did you mean 'maxReplicas'?)",
        ),
        (
            "serve:\n  deployments:\n    Enhancer:\n      max_ongoing_request: 3\n",
            "serve.deployments.Enhancer.max_ongoing_request: unknown option",
        ),
        ("name: [unclosed\n", "line 2: expected"),
        ("- a list\n", "the values file must be a mapping"),
    ],
)
def test_cli_render_errors_are_one_line(tmp_path, content, expected):
    values = tmp_path / "values.yaml"
    values.write_text(content)
    result = CliRunner().invoke(
        kuberay_app, ["render", "-f", str(values), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_render_missing_values_file(tmp_path):
    result = CliRunner().invoke(
        kuberay_app, ["render", "-f", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "cannot read" in result.stderr


@pytest.mark.parametrize("command", [["--help"], ["render", "--help"], ["validate", "--help"]])
def test_cli_help_has_an_example(command):
    result = CliRunner().invoke(kuberay_app, command)
    assert result.exit_code == 0
    if command != ["--help"]:
        assert "Example: ai-agents kuberay" in result.stdout


def test_rendered_files_written_to_disk_match(tmp_path, default_render):
    paths = write(default_render, tmp_path)
    assert {p.name for p in paths} == EXPECTED_FILES
    assert all(p.read_text() == default_render[p.name] for p in paths)


def test_rerender_removes_generated_files_that_are_gone(tmp_path, default_render):
    write(default_render, tmp_path)
    (tmp_path / "mine.yaml").write_text("apiVersion: v1\nkind: Namespace\n")
    write(render(values_from_dict({"ingress": {"enabled": False}})), tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == (EXPECTED_FILES - {"service-ingress.yaml"}) | {"mine.yaml"}


def test_production_pools_scale_on_the_backlog_and_need_added_pods(production_render):
    pools = deployments(production_render)
    for name in (pool_options.ENHANCER, pool_options.SYNTHESIZER, pool_options.CONTEXT_GATHERER):
        policy = pools[name]["autoscaling_config"]["policy"]
        assert policy["policy_function"] == pool_options.BACKLOG_POLICY["policy_function"], name
    cluster = rayservice(production_render)["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    (group,) = cluster["workerGroupSpecs"]
    cpus = float(group["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
    demand = replica_cpu_demand(serve_config(production_render))
    # the pools at max do not fit the minimum workers (the autoscaler must add pods) but do fit
    # the maximum
    assert group["minReplicas"] * cpus < demand <= group["maxReplicas"] * cpus
    enhancer = pools[pool_options.ENHANCER]["autoscaling_config"]
    env = {e["name"]: e.get("value") for e in group["template"]["spec"]["containers"][0]["env"]}
    assert int(env["AI_AGENTS_DISPATCH_MAX_INFLIGHT"]) >= (
        enhancer["max_replicas"] * enhancer["target_ongoing_requests"]
    )
