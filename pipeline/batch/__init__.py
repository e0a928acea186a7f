"""Batch work on a tenant: re-enhancement, re-embedding and bulk import (the Ray Jobs' logic)."""
