"""Prefect block definitions and their registration (notification channels, the CFBD key as a
Secret). The operations issue fills this package; the pipeline itself needs no block to run."""
