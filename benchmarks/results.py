"""benchmarks/RESULTS.md keeps each benchmark's latest table, its command and its date."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path


def write_section(
    section: str,
    command: str,
    table: str,
    note: str = "onnxruntime in the same process, runs interleaved, medians",
) -> None:
    """Replace (or add) one benchmark's section of RESULTS.md."""
    path = Path(__file__).with_name("RESULTS.md")
    body = path.read_text() if path.exists() else "# Benchmark results\n"
    date = datetime.date.today().isoformat()
    block = (
        f"<!-- {section} -->\n## {section}\n\n"
        f"`{command}` — {date}, {platform.processor() or platform.machine()}, "
        f"{note}.\n\n{table}\n"
        f"<!-- /{section} -->\n"
    )
    start, end = f"<!-- {section} -->", f"<!-- /{section} -->\n"
    if start in body:
        head, _, rest = body.partition(start)
        _, _, tail = rest.partition(end)
        body = head + block + tail
    else:
        body = body.rstrip("\n") + "\n\n" + block
    tmp = path.with_suffix(".tmp")
    tmp.write_text(body)
    tmp.replace(path)
