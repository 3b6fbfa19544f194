"""Test support shipped with the package, shared by the tests and the benchmarks: a fake CFBD API
server (`fake_cfbd`), parts of the bundled snapshot (`snapshots`), real local services run from
outside (`servers`: Prefect, a worker, PostgreSQL, SMTP, an HTTP receiver, the dashboard) and
timing a `gridiron` command from outside (`timing`). None of it imports Prefect."""
