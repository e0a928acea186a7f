"""What protects the rendered cluster: Ray's token, GCS fault tolerance, the NetworkPolicies
(and the evaluation of their rules), the restricted pod profile, the ServiceAccount and the
disruption budgets; `validate` refuses a hand-edited manifest that drops any of them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.kuberay import kuberay_app
from kuberay.manifests.ray_ports import RAY_PORTS, cluster_ports
from kuberay.render import dump_yaml, render, write
from kuberay.validation.network_rules import Endpoint, allowances, allowed, selects
from kuberay.validation.validate import validate_files
from kuberay.values_files import values_from_dict


def docs(rendered: dict[str, str], filename: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered[filename]) if d]


def edit(rendered: dict[str, str], filename: str, change, index: int = 0) -> dict[str, str]:
    documents = docs(rendered, filename)
    change(documents[index])
    return {**rendered, filename: "---\n".join(dump_yaml(d) for d in documents)}


def cluster(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["rayClusterConfig"]


def errors(rendered: dict[str, str]) -> list[str]:
    return [str(e) for e in validate_files(rendered).errors]


def policies(rendered: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs(rendered, "networkpolicy.yaml")}


# ---------------------------------------------------------------------------- rendered


def test_every_pod_meets_the_restricted_profile(default_render):
    (service,) = docs(default_render, "rayservice.yaml")
    (job,) = docs(default_render, "migration-job.yaml")
    specs = [cluster(service)["headGroupSpec"]["template"]["spec"]]
    specs += [g["template"]["spec"] for g in cluster(service)["workerGroupSpecs"]]
    specs.append(job["spec"]["template"]["spec"])
    for spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 1000
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] == "ai-agents"
        (container,) = spec["containers"]
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/tmp"] == "tmp"
        assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
    autoscaler = cluster(service)["autoscalerOptions"]
    assert autoscaler["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # only the autoscaler sidecar gets the Kubernetes API token; the Ray container has none
    assert autoscaler["volumeMounts"] == [
        {
            "name": "kube-api-access",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        }
    ]
    head = cluster(service)["headGroupSpec"]["template"]["spec"]
    assert "kube-api-access" in {v["name"] for v in head["volumes"]}
    assert all(
        m["name"] != "kube-api-access" for c in head["containers"] for m in c["volumeMounts"]
    )
    (account,) = docs(default_render, "serviceaccount.yaml")
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["name"] == "ai-agents"


def test_worker_groups_get_a_disruption_budget(production_render):
    (budget,) = docs(production_render, "poddisruptionbudget.yaml")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/instance": "ai-agents",
        "app.kubernetes.io/component": "ray-worker",
        "ray.io/group": "pools",
    }


def test_gcs_fault_tolerance_takes_the_password_from_a_secret(
    production_render, production_ft_render
):
    (off,) = docs(production_render, "rayservice.yaml")
    assert "gcsFaultToleranceOptions" not in cluster(off)  # off until a restarted head holds
    production_render = production_ft_render
    (service,) = docs(production_render, "rayservice.yaml")
    assert cluster(service)["gcsFaultToleranceOptions"] == {
        "redisAddress": "redis-master.redis.svc:6379",
        "redisPassword": {
            "valueFrom": {"secretKeyRef": {"name": "ai-agents-secrets", "key": "REDIS_PASSWORD"}}
        },
    }
    assert "REDIS_PASSWORD" in docs(production_render, "secret-template.yaml")[0]["stringData"]
    egress = policies(production_render)["ai-agents-egress-head"]["spec"]["egress"]
    assert {"ports": [{"port": 6379, "protocol": "TCP"}], "to": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "redis"}}}
    ]} in egress  # fmt: skip


def test_ray_token_can_share_the_service_secret():
    rendered = render(values_from_dict({"rayAuth": {"secretName": "ai-agents-secrets"}}))
    (secret,) = docs(rendered, "secret-template.yaml")
    assert "auth_token" in secret["stringData"]
    disabled = render(values_from_dict({"rayAuth": {"enabled": False}}))
    (service,) = docs(disabled, "rayservice.yaml")
    assert "authOptions" not in cluster(service)


def test_network_policies_deny_by_default_and_allow_exactly(default_render):
    found = policies(default_render)
    deny = found["ai-agents-default-deny"]["spec"]
    assert deny == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/instance": "ai-agents"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [],
    }
    internal = found["ai-agents-ray-cluster"]["spec"]["ingress"][0]["ports"]
    pinned = {(p.port, p.end_port) for p in cluster_ports(haproxy=True)}  # the default mode
    assert {(p["port"], p.get("endPort")) for p in internal} == pinned
    assert {"port": 30000, "endPort": 31000, "protocol": "TCP"} in internal
    proxy = policies(render(values_from_dict({"serve": {"ingressMode": "proxy"}})))
    ports = proxy["ai-agents-ray-cluster"]["spec"]["ingress"][0]["ports"]
    assert {"port": 30000, "endPort": 31000, "protocol": "TCP"} not in ports  # HAProxy's only
    operator = found["ai-agents-kuberay-operator"]["spec"]
    assert operator["ingress"][0]["ports"] == [{"port": 8265, "protocol": "TCP"}]
    serve = found["ai-agents-serve"]["spec"]["ingress"][0]
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for p in serve["from"]}  # fmt: skip
    assert namespaces == {"ingress-nginx", "monitoring"}
    assert serve["ports"] == [{"port": 8000, "protocol": "TCP"}]


def _pods(rendered: dict[str, str]) -> dict[str, Endpoint]:
    (service,) = docs(rendered, "rayservice.yaml")
    spec = cluster(service)
    head = spec["headGroupSpec"]["template"]["metadata"]["labels"]
    worker = spec["workerGroupSpecs"][0]["template"]["metadata"]["labels"]
    return {
        "head": Endpoint("head", "ai-agents", {**head, "ray.io/node-type": "head"}, "10.1.0.1"),
        "worker": Endpoint("worker", "ai-agents", worker, "10.1.0.2"),
        "nginx": Endpoint("nginx", "ingress-nginx", {"app": "nginx"}, "10.2.0.1"),
        "prometheus": Endpoint("prom", "monitoring", {"app": "prometheus"}, "10.3.0.1"),
        "operator": Endpoint(
            "operator", "kuberay-system", {"app.kubernetes.io/name": "kuberay-operator"}, "10.4.0.1"
        ),
        "stranger": Endpoint("stranger", "ai-agents", {"app": "debug"}, "10.1.0.9"),
        "postgres": Endpoint("pg", "db", {"app": "postgres"}, "10.9.0.5"),
    }


def test_the_rendered_policy_allows_who_it_should_and_nobody_else(default_render):
    pods = _pods(default_render)
    rules = [d for d in docs(default_render, "networkpolicy.yaml")]
    everyone = list(pods.values())

    def ok(src: str, dst: str, port: int) -> bool:
        return allowed(pods[src], pods[dst], port, rules, everyone)

    assert ok("worker", "head", 6379) and ok("head", "worker", 8077) and ok("worker", "head", 12345)
    assert ok("nginx", "worker", 8000) and not ok("nginx", "worker", 8077)
    assert not ok("nginx", "head", 8265) and ok("operator", "head", 8265)
    assert not ok("operator", "worker", 8265) and not ok("operator", "head", 6379)
    assert ok("prometheus", "worker", 8080) and ok("prometheus", "head", 44217)
    assert not ok("prometheus", "worker", 6379)
    # a pod of the same namespace that is not a Ray pod gets nothing
    assert not ok("stranger", "head", 6379) and not ok("stranger", "worker", 8000)
    # egress: PostgreSQL (10.0.0.0/8:5432) yes, another port of it no
    assert ok("worker", "postgres", 5432) and not ok("worker", "postgres", 22)
    assert not ok("head", "worker", 44217)  # monitoring-only ports never between the pods


def test_rule_semantics():
    assert selects({}, {"a": "1"}) and not selects(None, {"a": "1"})
    expr = {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}
    assert selects(expr, {"tier": "web"}) and not selects(expr, {"tier": "db"})
    assert selects({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, {})
    web = Endpoint("web", "ns", {"app": "web"}, "10.0.0.2", {"http": 8080})
    client = Endpoint("client", "ns", {"app": "client"}, "10.0.0.3")
    named = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.3/32"]}}],
                    "ports": [{"port": "http"}],
                }
            ],
        },
    }
    assert allowances(client, "Ingress", [named], [web, client]) is None  # not isolated
    other = Endpoint("other", "ns", {}, "10.0.0.4")
    assert allowed(other, web, 8080, [named], [web, client, other])
    assert not allowed(other, web, 8081, [named], [web, client, other])
    assert not allowed(client, web, 8080, [named], [web, client, other])  # excepted


# ---------------------------------------------------------------------------- validate


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"][
                "containers"
            ][0]["securityContext"].pop("allowPrivilegeEscalation"),
            "rayservice.yaml: RayService/ai-agents: spec.rayClusterConfig.headGroupSpec.template"
            ".spec.containers[0].securityContext.allowPrivilegeEscalation: must be false "
            '(Pod Security "restricted")',
        ),
        (
            lambda d: d["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"][
                "securityContext"
            ].update(runAsUser=0),
            "spec.rayClusterConfig.workerGroupSpecs[0].template.spec.securityContext.runAsUser: "
            "must not be 0",
        ),
        (
            lambda d: d["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"][
                "volumes"
            ].append({"name": "host", "hostPath": {"path": "/var/run"}}),
            "spec.rayClusterConfig.workerGroupSpecs[0].template.spec.volumes[2].hostPath: "
            "volume type hostPath is not allowed",
        ),
        (
            lambda d: d["spec"]["rayClusterConfig"]["autoscalerOptions"]["securityContext"][
                "capabilities"
            ].update(add=["NET_ADMIN"]),
            "spec.rayClusterConfig.autoscalerOptions.securityContext.capabilities.add: may only "
            "add NET_BIND_SERVICE",
        ),
    ],
)
def test_validate_refuses_a_pod_that_breaks_the_restricted_profile(
    default_render, change, expected
):
    found = errors(edit(default_render, "rayservice.yaml", change))
    assert len(found) == 1 and expected in found[0], found


def test_missing_seccomp_is_reported_per_container(default_render):
    def drop(doc):
        head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
        del head["securityContext"]["seccompProfile"]
        del head["containers"][0]["securityContext"]["seccompProfile"]

    (found,) = errors(edit(default_render, "rayservice.yaml", drop))
    assert found.endswith(
        "headGroupSpec.template.spec.containers[0].securityContext.seccompProfile.type: must be "
        'RuntimeDefault or Localhost, here or in the pod (Pod Security "restricted")'
    )


def test_a_policy_that_forgets_a_pinned_port_fails(default_render):
    def forget(doc):
        for rule in doc["spec"]["ingress"]:
            rule["ports"] = [p for p in rule["ports"] if p["port"] != 8076]

    index = [d["metadata"]["name"] for d in docs(default_render, "networkpolicy.yaml")].index(
        "ai-agents-ray-cluster"
    )
    found = errors(edit(default_render, "networkpolicy.yaml", forget, index))
    assert found == [
        "rayservice.yaml: RayService/ai-agents: "
        "spec.rayClusterConfig.headGroupSpec.rayStartParams.object-manager-port: port 8076 is "
        "not allowed between the cluster's pods by the NetworkPolicies "
        "(worker -> head, head -> worker, worker -> worker-2)",
        "rayservice.yaml: RayService/ai-agents: "
        "spec.rayClusterConfig.workerGroupSpecs[0].rayStartParams.object-manager-port: port 8076 "
        "is not allowed between the cluster's pods by the NetworkPolicies "
        "(worker -> head, head -> worker, worker -> worker-2)",
    ]


def test_an_unpinned_ray_port_fails(default_render):
    def unpin(doc):
        doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["rayStartParams"].pop(
            "node-manager-port"
        )

    (found,) = errors(edit(default_render, "rayservice.yaml", unpin))
    assert "workerGroupSpecs[0].rayStartParams.node-manager-port: required: pin the port" in found


def test_every_ray_port_has_a_name_and_a_purpose():
    names = [p.name for p in RAY_PORTS]
    assert len(names) == len(set(names))
    assert all(len(p.name) <= 15 for p in RAY_PORTS)  # a container port name's limit


def test_cli_validate_names_the_object_and_field(tmp_path, default_render):
    def escalate(doc):
        doc["spec"]["template"]["spec"]["containers"][0]["securityContext"][
            "allowPrivilegeEscalation"
        ] = True

    write(edit(default_render, "migration-job.yaml", escalate), tmp_path)
    result = CliRunner().invoke(kuberay_app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert (
        "migration-job.yaml: Job/ai-agents-migrate: spec.template.spec.containers[0]"
        ".securityContext.allowPrivilegeEscalation: must be false" in result.output
    )
