"""gridiron: the domain logic of the college football pipeline (no Prefect here).

API client and snapshot source (`gridiron.sources`), partition planning (`gridiron.planning`), the
table registry (`gridiron.tables`), pure polars transforms (`gridiron.transforms`), quality
(`gridiron.quality`), the model (`gridiron.model`), the DuckDB warehouse and staging area
(`gridiron.storage`) and the phases' typed results (`gridiron.results`). The command line (`cli`)
and the Prefect flows and tasks sit outside it and call it.
"""

__version__ = "0.1.0"
