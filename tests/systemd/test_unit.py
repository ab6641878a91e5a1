"""The shipped unit passes `systemd-analyze verify` and scores "OK" (<= 2.0) in its offline
security audit."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[2] / "systemd" / "pulsegate.service"
MAX_EXPOSURE_TENTHS = 20  # systemd-analyze --threshold is in tenths: 20 = 2.0 "OK"


@pytest.fixture
def unit_dir() -> Path:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: the README's test command installs systemd")
    workdir = Path(tempfile.mkdtemp(prefix="unit"))
    # verify checks that ExecStart is executable: point it at this checkout's pulsegate.
    pulsegate = Path(sys.executable).with_name("pulsegate")
    text = UNIT.read_text().replace("/opt/pulsegate/venv/bin/pulsegate", str(pulsegate))
    (workdir / UNIT.name).write_text(text)
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


def analyze(unit_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args, f"./{UNIT.name}"],
        cwd=unit_dir,
        env={"TMPDIR": str(unit_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unit_verifies(unit_dir: Path) -> None:
    result = analyze(unit_dir, "verify")
    assert result.returncode == 0, result.stderr


def test_unit_security_exposure_is_ok(unit_dir: Path) -> None:
    result = analyze(unit_dir, "security", "--offline=true", f"--threshold={MAX_EXPOSURE_TENTHS}")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Overall exposure level for pulsegate.service" in result.stdout


def test_unit_is_type_notify_with_a_watchdog() -> None:
    text = UNIT.read_text()
    assert "Type=notify" in text
    assert "WatchdogSec=" in text
