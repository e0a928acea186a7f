"""What a set of NetworkPolicies allows, evaluated the way Kubernetes does
(https://kubernetes.io/docs/concepts/services-networking/network-policies/).

A pod is isolated for ingress (egress) once any policy of its namespace selects it with that
policy type; it then accepts (opens) only connections some rule of those policies allows, and
a connection needs both ends to agree. Policies only add. Rules match a peer by
``podSelector`` (in the policy's namespace), ``namespaceSelector`` (optionally with a
``podSelector``) or ``ipBlock`` (``cidr`` minus ``except``), and a port by number, name (the
target's container port) or range (``endPort``).

Two users: ``kuberay validate`` asks whether the rendered policy lets the cluster's pods reach
every port Ray pins, and the multi-host harness (``local_stack.hosts.firewall``) turns the
allowances of each host into packet filter rules. Both read the same objects, so what the
harness enforces is what Kubernetes would.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """A pod as a NetworkPolicy sees it: its namespace (and that namespace's labels), its
    labels, its address and its named container ports."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ip: str | None = None
    named_ports: Mapping[str, int] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)

    def ns_labels(self) -> dict[str, str]:
        return {**self.namespace_labels, NAMESPACE_LABEL: self.namespace}


@dataclass(frozen=True)
class Allowance:
    """Connections a rule allows: from/to these address blocks (``cidr``, minus ``excluded``),
    this protocol and port range (``port`` None: every port)."""

    cidr: str
    excluded: tuple[str, ...]
    protocol: str
    port: int | None
    end_port: int | None

    def covers(self, ip: str, protocol: str, port: int) -> bool:
        if protocol != self.protocol or not _in_block(ip, self.cidr, self.excluded):
            return False
        if self.port is None:
            return True
        return self.port <= port <= (self.end_port or self.port)


def _in_block(ip: str, cidr: str, excluded: Sequence[str]) -> bool:
    address = ipaddress.ip_address(ip)
    network = ipaddress.ip_network(cidr, strict=False)
    if address.version != network.version or address not in network:
        return False
    return not any(address in ipaddress.ip_network(e, strict=False) for e in excluded)


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector (``matchLabels`` and ``matchExpressions``); ``{}`` selects all."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def applying(
    policies: Iterable[Mapping[str, Any]], pod: Endpoint, direction: str
) -> list[Mapping[str, Any]]:
    """The policies of the pod's namespace that select it for ``direction``."""
    return [
        p
        for p in policies
        if (p.get("metadata") or {}).get("namespace") == pod.namespace
        and direction in _policy_types(p)
        and selects((p.get("spec") or {}).get("podSelector"), pod.labels)
    ]


def _peer_endpoints(
    peer: Mapping[str, Any], policy_namespace: str, endpoints: Iterable[Endpoint]
) -> list[Endpoint]:
    pods = peer.get("podSelector")
    namespaces = peer.get("namespaceSelector")
    out = []
    for other in endpoints:
        if namespaces is not None:
            if not selects(namespaces, other.ns_labels()):
                continue
        elif other.namespace != policy_namespace:
            continue
        if pods is not None and not selects(pods, other.labels):
            continue
        out.append(other)
    return out


def _port_ranges(
    ports: Sequence[Mapping[str, Any]] | None, target: Endpoint | None
) -> list[tuple[str, int | None, int | None]]:
    """(protocol, port, end port) of a rule; a named port resolves on ``target``."""
    out: list[tuple[str, int | None, int | None]] = []
    if not ports:
        return [(proto, None, None) for proto in ("TCP", "UDP", "SCTP")]
    for entry in ports:
        proto = entry.get("protocol", "TCP")
        port = entry.get("port")
        if port is None:
            out.append((proto, None, None))
        elif isinstance(port, str) and not port.isdigit():
            if target is not None and port in target.named_ports:
                number = target.named_ports[port]
                out.append((proto, number, number))
        else:
            out.append((proto, int(port), entry.get("endPort")))
    return out


def allowances(
    pod: Endpoint,
    direction: str,
    policies: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Endpoint],
) -> list[Allowance] | None:
    """What ``pod`` accepts (``Ingress``: sources) or may open (``Egress``: destinations);
    None when no policy isolates it in that direction (everything is allowed)."""
    policies = list(policies)
    endpoints = list(endpoints)
    chosen = applying(policies, pod, direction)
    if not chosen:
        return None
    key, side = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    out: list[Allowance] = []
    for policy in chosen:
        namespace = (policy.get("metadata") or {}).get("namespace", "")
        for rule in (policy.get("spec") or {}).get(key) or []:
            peers = rule.get(side)
            blocks: list[tuple[str, tuple[str, ...], Endpoint | None]] = []
            if not peers:
                blocks.append(("0.0.0.0/0", (), None))
            for peer in peers or []:
                if "ipBlock" in peer:
                    block = peer["ipBlock"]
                    blocks.append((block["cidr"], tuple(block.get("except") or ()), None))
                    continue
                for match in _peer_endpoints(peer, namespace, endpoints):
                    if match.ip:
                        blocks.append((f"{match.ip}/32", (), match))
            for cidr, excluded, other in blocks:
                target = pod if direction == "Ingress" else other
                for proto, port, end in _port_ranges(rule.get("ports"), target):
                    out.append(Allowance(cidr, excluded, proto, port, end))
    return out


def allowed(
    source: Endpoint,
    destination: Endpoint,
    port: int,
    policies: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Endpoint],
    protocol: str = "TCP",
) -> bool:
    """Would a connection from ``source`` to ``destination:port`` pass both ends' policies?"""
    policies, endpoints = list(policies), list(endpoints)
    assert source.ip and destination.ip, "both ends need an address"
    inbound = allowances(destination, "Ingress", policies, endpoints)
    outbound = allowances(source, "Egress", policies, endpoints)
    ok_in = inbound is None or any(a.covers(source.ip, protocol, port) for a in inbound)
    ok_out = outbound is None or any(a.covers(destination.ip, protocol, port) for a in outbound)
    return ok_in and ok_out
