"""Writing a benchmark's table into BENCHMARKS.md, between that benchmark's markers."""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


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
