"""What the service opens on the network and how it is bounded: HAProxy's generated config made
safe to expose (``haproxy``), the cloud metadata addresses no tenant URL may reach
(``cloud_metadata``)."""
