"""What the benchmarks share beyond `gridiron.testing` (the servers, and timing a command from
outside): a config file of the shipped settings with a benchmark's changes, and writing a
benchmark's table into BENCHMARKS.md, between that benchmark's markers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config" / "pipeline_config.yaml"


def config_file(path: Path, **values: Any) -> Path:
    """The shipped config with `values` over it (a dict is merged into its section), written to `path`."""
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    for key, value in values.items():
        config[key] = {**(config.get(key) or {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(config))
    return path


def write_section(name: str, title: str, body: str) -> str:
    """Replace (or append) the section of benchmark `name`; returns the marked text written."""
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    marked = f"{begin}\n{body}\n{end}"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: marked, text, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n{marked}\n"
    BENCHMARKS.write_text(text)
    return marked
