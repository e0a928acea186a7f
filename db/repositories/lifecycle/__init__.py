"""What the data lifecycle runs in the database: the retention purge and erasure on request."""
