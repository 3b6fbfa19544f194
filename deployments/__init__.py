"""Idempotent setup of the work pool, blocks, deployments and automations (`gridiron deploy`).
The operations issue fills this package; `prefect.yaml` at the root describes the deployments."""
