"""What this CPU's matrix units can do, detected at run time (never assumed).

Machines of the same kind differ: one has an AMD EPYC with AVX2 only, another AVX-512 with
bfloat16, another an Intel Xeon with AMX-BF16 and AMX-INT8 tiles. The passage engine runs
in bfloat16 only where the CPU has bfloat16 arithmetic (AMX-BF16 or AVX512-BF16): elsewhere
bfloat16 is emulated and slower than float32. Read from ``/proc/cpuinfo`` (Linux); any
other system reports no units, so float32 is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: The flags that name a matrix or dot-product unit the engines use, in report order.
UNITS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx_vnni")
#: Units that make bfloat16 matrix products faster than float32 ones.
BF16_UNITS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and the flags this module cares about."""

    model: str
    flags: frozenset[str]

    @property
    def units(self) -> list[str]:
        """The matrix units present, e.g. ``["amx_bf16", "amx_int8", ...]``."""
        return [u for u in UNITS if u in self.flags]

    @property
    def bf16(self) -> str | None:
        """The unit that runs bfloat16 natively, or None when bfloat16 would be emulated."""
        return next((u for u in BF16_UNITS if u in self.flags), None)

    def describe(self) -> str:
        units = ", ".join(self.units) or "no AMX/AVX-512 bf16 or VNNI units"
        return f"{self.model} ({units})"


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's model name and flags from ``/proc/cpuinfo`` text."""
    model, flags = "unknown CPU", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if flags and model != "unknown CPU":
            break
    return CpuInfo(model, flags)


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU (cached: it does not change while the process runs)."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        import platform

        return CpuInfo(platform.processor() or platform.machine() or "unknown CPU", frozenset())
