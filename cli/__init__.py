"""The `gridiron` command line: an application on top of the flows and the domain package.

It lives outside `gridiron` (which imports no Prefect, flows or tasks) because it starts flows.
"""

from cli.app import entry, main

__all__ = ["entry", "main"]
