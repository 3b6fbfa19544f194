"""gridiron: the domain logic of the college football pipeline (no Prefect here).

API client and snapshot source (`gridiron.sources`), partition planning (`gridiron.planning`), pure
polars transforms (`gridiron.transforms`), the DuckDB warehouse and staging area
(`gridiron.storage`). Only `gridiron.cli`, the command-line entry point, reaches into the Prefect
flows, and only when a command runs.
"""

__version__ = "0.1.0"
