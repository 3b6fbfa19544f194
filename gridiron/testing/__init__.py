"""Test support shipped with the package: a fake CFBD API server."""
