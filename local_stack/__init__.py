"""The local stack: what `ai-agents demo`, the benchmarks and the integration tests start on
one machine, written once so the three cannot drift apart.

One module per concern, each importable on its own (Ray is imported only where it is used):

- ``simulators``: the ServiceDesk Plus and LLM simulators on loopback threads.
- ``environment``: the ``AI_AGENTS_*`` settings the Serve replicas and Ray workers read.
- ``database``: an embedded PostgreSQL in a throw-away data directory, migrated, with the
  restricted service role (what ``ai-agents serve`` resolves), and its clean removal.
- ``tenants``: tenants created through the admin logic with portals in the SDP simulator, and
  seeded with a demo tenant's history, KB and assets.
- ``ray_serve``: a local Ray cluster and the Serve application, started and stopped.
- ``results``: waiting for enhancement jobs to finish (or for the queue to drain) and reading
  their rows.

It sits at the entry-point level (it starts Ray, Serve, PostgreSQL and the simulators), so only
entry points use it: the CLI, the benchmarks and the tests.
"""
