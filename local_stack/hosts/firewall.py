"""The rendered NetworkPolicies as default-deny nftables rules in each host's namespace.

Each host plays a pod (its Kubernetes namespace, labels and address: ``Endpoint``). For a host
some policy isolates, its ``input`` (ingress) or ``output`` (egress) chain drops everything but
loopback, replies to allowed connections (``ct state established,related``) and exactly what
``kuberay.validation.network_rules.allowances`` finds in the policies, the same evaluation
``kuberay validate`` runs; a host no policy selects stays open, as an unselected pod is. A
dropped packet is silent, as on a cluster: the connection times out. The final rule of each
chain counts what it dropped (``dropped``), so a test can show which host refused traffic.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kuberay.validation.network_rules import Allowance, Endpoint, allowances
from local_stack.hosts.netns import exec_argv

TABLE = "aa_policy"


@dataclass(frozen=True)
class HostRules:
    """The ruleset of one host and what it came from."""

    host: str
    ingress: list[Allowance] | None
    egress: list[Allowance] | None

    def ruleset(self) -> str:
        chains = [
            _chain("input", "saddr", "iif", self.ingress),
            _chain("output", "daddr", "oif", self.egress),
        ]
        body = "\n".join(c for c in chains if c)
        # add + delete + define: replaces the table atomically (nft -f is one transaction)
        reset = f"add table inet {TABLE}\ndelete table inet {TABLE}\n"
        return f"{reset}table inet {TABLE} {{\n{body}\n}}\n"


def _match(allowance: Allowance, direction: str) -> str:
    parts = [f"ip {direction} {allowance.cidr}"]
    if allowance.excluded:
        parts.append(f"ip {direction} != {{ {', '.join(allowance.excluded)} }}")
    proto = allowance.protocol.lower()
    if allowance.port is None:
        parts.append(f"meta l4proto {proto}")
    elif allowance.end_port and allowance.end_port != allowance.port:
        parts.append(f"{proto} dport {allowance.port}-{allowance.end_port}")
    else:
        parts.append(f"{proto} dport {allowance.port}")
    return " ".join(parts)


def _chain(
    name: str, direction: str, interface: str, allowed: list[Allowance] | None
) -> str | None:
    if allowed is None:
        return None  # not isolated in this direction
    rules = sorted({_match(a, direction) for a in allowed})
    lines = [
        f"  chain {name} {{",
        f"    type filter hook {name} priority 0; policy drop;",
        f'    {interface} "lo" accept',
        "    ct state established,related accept",
        *(f"    {rule} accept" for rule in rules),
        "    counter drop",
        "  }",
    ]
    return "\n".join(lines)


def host_rules(
    host: Endpoint, policies: Iterable[Mapping[str, Any]], endpoints: Iterable[Endpoint]
) -> HostRules:
    policies, endpoints = list(policies), list(endpoints)
    return HostRules(
        host.name,
        allowances(host, "Ingress", policies, endpoints),
        allowances(host, "Egress", policies, endpoints),
    )


def _nft(namespace: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        exec_argv(namespace, ["nft", *args]),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise RuntimeError(f"nft {' '.join(args)} in {namespace}: {result.stderr.strip()}")
    return result.stdout


def apply(namespace: str, rules: HostRules) -> None:
    """Install (or replace) the host's rules; a host with nothing to isolate gets none."""
    if rules.ingress is None and rules.egress is None:
        clear(namespace)
        return
    _nft(namespace, "-f", "-", stdin=rules.ruleset())


def clear(namespace: str) -> None:
    _nft(namespace, "-f", "-", stdin=f"add table inet {TABLE}\ndelete table inet {TABLE}\n")


def dropped(namespace: str) -> dict[str, int]:
    """Packets each chain's final rule dropped so far (``{"input": n, "output": m}``)."""
    try:
        data = json.loads(_nft(namespace, "-j", "list", "table", "inet", TABLE))
    except RuntimeError:
        return {}
    counts: dict[str, int] = {}
    for item in data.get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr:
                counts[rule["chain"]] = int(expr["counter"]["packets"])
    return counts
