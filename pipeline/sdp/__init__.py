"""ServiceDesk Plus: its v3 API client, its ticket and webhook shapes mapped to ours, and its
errors."""
