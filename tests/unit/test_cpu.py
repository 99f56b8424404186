"""Matrix units read from /proc/cpuinfo: what decides bfloat16 passages (qa.embedding.cpu)."""

from __future__ import annotations

from pathlib import Path

from qa.embedding.cpu import CpuInfo, cpu_info, parse_cpuinfo

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8
processor\t: 1
model name\t: ignored second processor
flags\t\t: fpu
"""
ZEN4 = "model name : AMD EPYC 9B14\nflags : fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
ZEN3 = "model name : AMD EPYC 7B13\nflags : fpu avx2 fma\n"


def test_units_are_read_from_the_first_processor() -> None:
    xeon = parse_cpuinfo(XEON)
    assert xeon.model.startswith("Intel(R) Xeon(R) Platinum 8481C")
    assert xeon.units == ["amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni"]
    assert xeon.bf16 == "amx_bf16"  # the tiles first: the faster unit is named
    zen4 = parse_cpuinfo(ZEN4)
    assert zen4.bf16 == "avx512_bf16" and zen4.units == ["avx512_bf16", "avx512_vnni"]
    zen3 = parse_cpuinfo(ZEN3)
    assert zen3.bf16 is None and zen3.units == []
    assert "no AMX" in zen3.describe() and "amx_bf16" in xeon.describe()


def test_no_cpuinfo_means_no_units() -> None:
    empty = parse_cpuinfo("")
    assert empty == CpuInfo("unknown CPU", frozenset()) and empty.bf16 is None


def test_this_machine_is_detected_not_assumed() -> None:
    """Whatever this CPU is, the answer comes from its own flags."""
    info = cpu_info()
    text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    assert info == parse_cpuinfo(text)
    assert (info.bf16 is not None) == any(f in info.flags for f in ("amx_bf16", "avx512_bf16"))


def test_large_passage_jobs_load_pytorch_only_for_bfloat16(monkeypatch) -> None:
    """Float32 runs on the light engine whatever the job; PyTorch is loaded for bfloat16."""
    from qa.config import Settings
    from qa.embedding import engines

    amx = CpuInfo("Intel Xeon", frozenset({"amx_bf16", "amx_int8", "avx512_bf16"}))
    epyc = CpuInfo("AMD EPYC", frozenset({"avx2"}))
    for cpu, precision, expected in [
        (amx, "auto", True),
        (epyc, "auto", False),
        (amx, "float32", False),
        (epyc, "bfloat16", True),  # forced: emulated, but only PyTorch runs it
    ]:
        monkeypatch.setattr(engines, "cpu_info", lambda cpu=cpu: cpu)
        settings = Settings(precision=precision, _env_file=None)
        assert engines.heavy_pays(settings) is expected, (cpu.model, precision)
