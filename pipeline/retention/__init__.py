"""Retention and erasure: how long stored data lives (the periodic purge the Dispatcher hosts)
and erasing one requester's data on request."""
