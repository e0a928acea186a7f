"""Stage 3 — synthesis: the prompt, the LLM client with its breaker, the synthesizer and its
fallback."""
