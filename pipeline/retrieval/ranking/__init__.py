"""The second stage of similar-ticket retrieval: features of each fused candidate, a logistic
regression that ranks them, the relevance bar that decides what a note shows, and refitting all
of it from the outcomes the service records (docs/architecture/retrieval-quality.md)."""
