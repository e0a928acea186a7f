"""A cluster of real hosts on this machine: each Ray node, the database, Redis, the simulators,
the ingress controller and the KubeRay operator a Linux network namespace with its own address
on one private subnet, the rendered NetworkPolicies enforced as packet filter rules on every
host (``cluster.HostCluster``). Used by the cluster tests and ``benchmarks/cluster``; needs
root, ``ip``, ``nft`` and (for GCS fault tolerance) ``redis-server``.
"""
