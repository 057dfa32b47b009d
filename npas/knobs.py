"""Every environment knob npas reads, declared once and typed; read at use time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Knob:
    env: str
    default: str
    doc: str

    def get(self) -> str:
        return os.environ.get(self.env, self.default)

    def flag(self) -> bool:
        return self.get().lower() not in ("", "0", "false", "no")


CACHE_DIR = Knob("NPAS_CACHE_DIR", str(Path.home() / ".cache" / "npas"), "compile cache root")
CACHE_MAX_GB = Knob("NPAS_CACHE_MAX_GB", "4", "size cap of cached whole-model builds (LRU)")
ISA = Knob("NPAS_ISA", "", "force a lower host ISA: scalar | avx2 | avx512")
KEEP_BUILD = Knob("NPAS_KEEP_BUILD", "0", "keep every stage's output (sources, build tree)")
NO_CACHE = Knob("NPAS_NO_CACHE", "0", "ignore the compile cache")
JOBS = Knob("NPAS_JOBS", "", "parallel compile jobs (default: CPU count)")
