"""The report entry point regenerates every section (reduced size) into Markdown + PNG."""
import re

import eyejax  # noqa: F401
from eyejax.app import report


def test_reduced_report(tmp_path):
    out = tmp_path / "report"
    path = report.build(str(out), reduced=True, verbose=False)
    text = open(path).read()
    for title in ("Eyeriss v1 against the silicon, layer by layer",
                  "Eyeriss v1 against the published numbers", "ISCA16: RS against the other dataflows",
                  "Eyexam: where each layer's throughput goes"):
        assert f"## {title}" in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) >= 6
    for name in images:                      # every embedded figure exists and is a real PNG
        p = out / name
        assert p.is_file() and p.stat().st_size > 10_000, name
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the ISCA16 claims table has a verdict per claim at the reduced setting (256 PEs, batch 16)
    claims = re.findall(r"^\| (CONV|FC)[^|]*\| 256 \| 16 \| [0-9.]+× \([A-Z_]+\) \| (yes|NO)", text, re.M)
    assert len(claims) == 3
    assert (out / "isca16_totals.csv").is_file() and (out / "eyexam_v1_alexnet.csv").is_file()


def test_module_entry_point():
    """`python -m eyejax.report` is the report command (parses its own options)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "eyejax.report", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--reduced" in out.stdout and "--out" in out.stdout
