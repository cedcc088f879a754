"""The CPU identity that decides whether two CPU results can be bitwise equal."""

from __future__ import annotations

from benchmark.runs.environment import cpu_model

BLOCK = """processor\t: {n}
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Test CPU
flags\t\t: fpu sse2 avx avx2 {extra}
cache size\t: 1024 KB
"""


def cpuinfo(tmp_path, name: str, first_extra: str, second_extra: str = "avx512f"):
    path = tmp_path / name
    path.write_text(BLOCK.format(n=0, extra=first_extra) + "\n" + BLOCK.format(n=1, extra=second_extra))
    return path


def test_the_first_processor_gives_the_name_and_its_flags_the_digest(tmp_path):
    plain = cpu_model(cpuinfo(tmp_path, "plain", "fma"))
    assert plain["name"] == "Intel(R) Xeon(R) Test CPU" and len(plain["features"]) == 12
    assert cpu_model(cpuinfo(tmp_path, "same", "fma", second_extra="other")) == plain  # later blocks are not read
    assert cpu_model(cpuinfo(tmp_path, "vnni", "fma avx512_vnni"))["features"] != plain["features"]
    cache = tmp_path / "cache"
    cache.write_text(cpuinfo(tmp_path, "c", "fma").read_text().replace("1024 KB", "2048 KB"))
    assert cpu_model(cache)["features"] != plain["features"]


def test_without_cpuinfo_there_is_no_digest(tmp_path):
    assert cpu_model(tmp_path / "missing")["features"] is None
