"""Thin Prefect task wrappers: retries, caching and timeouts here; the work in `gridiron`."""
