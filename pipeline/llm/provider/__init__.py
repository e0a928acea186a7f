"""One provider key shared by every tenant: its budget of requests, tokens and concurrent
calls, the grants the LLM client asks of it, and the credit the key has left."""
