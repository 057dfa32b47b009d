"""benchmarks/RESULTS.md keeps each benchmark's latest table, its command and its date."""

from __future__ import annotations

import datetime
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

_NOTE = "onnxruntime in the same process, runs interleaved, medians"


def write_section(
    section: str,
    command: str,
    table: str,
    note: str = _NOTE,
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


def command_line(script: str) -> str:
    """How RESULTS.md quotes the run of `script` (a benchmark's __file__) with this process's
    arguments."""
    return f"python benchmarks/{Path(script).name} {' '.join(sys.argv[1:])}".strip()


def publish(
    section: str,
    script: str,
    table: str,
    details: Sequence[str] = (),
    *,
    write: bool,
    note: str = _NOTE,
) -> None:
    """Print a benchmark's summary `table`; with `write` (its --results) it also becomes
    `section` of RESULTS.md, quoted with the command that ran `script`, with the per-model
    `details` tables after it."""
    print()
    print(table)
    if write:
        write_section(section, command_line(script), "\n\n".join([table, *details]), note)
