"""`pulsegate report`: writes the page where asked (or PATIENT-DAY.pdf), and fails with one
clear line for a bad day, an unknown patient, a bad suffix or an unwritable path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.report_cli import default_output
from gateway.store import Store
from tests.gateway import report_day
from tests.gateway.report_day import DAY, PATIENT


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configuration whose data directory holds the simulated day."""
    root = tmp_path_factory.mktemp("report-cli")
    store = Store.open(root / "data" / "pulsegate.db", "gw-demo")
    try:
        report_day.write_day(store)
    finally:
        store.close()
    path = root / "pulsegate.toml"
    path.write_text(
        f'[gateway]\nid = "gw-demo"\nsite = "village-1"\ndata_dir = "{root / "data"}"\n'
        "[detector]\nutc_offset_h = 8.0\n"
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(config), "report", *args])
    return result.exit_code, result.stdout, result.stderr


def test_writes_the_pdf_and_prints_its_path(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.pdf"
    code, stdout, _ = run(config, PATIENT, "--day", DAY.isoformat(), "-o", str(out))
    assert code == 0
    assert stdout.strip() == str(out)
    assert out.read_bytes().startswith(b"%PDF-")


def test_a_png_by_its_suffix_in_english(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.PNG"
    code, _, _ = run(config, PATIENT, "--day", DAY.isoformat(), "-o", str(out), "--lang", "en")
    assert code == 0
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_default_day_is_yesterday_and_default_file_is_patient_day_pdf(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run(config, PATIENT)
    yesterday = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date() - dt.timedelta(days=1)
    assert code == 0
    assert stdout.strip() == f"{PATIENT}-{yesterday.isoformat()}.pdf"
    assert (tmp_path / stdout.strip()).is_file()
    assert "note: no readings" in stderr  # the simulated day is in 2026-11


def test_default_file_name_never_leaves_the_directory() -> None:
    assert default_output("../x/y", DAY) == Path(".._x_y-2026-11-20.pdf")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--day", "20-11-2026"], 2, "expected a date as YYYY-MM-DD, got '20-11-2026'"),
        (["--day", "2026-02-30"], 2, "expected a date as YYYY-MM-DD, got '2026-02-30'"),
        (["-o", "page.svg"], 2, "the file name must end in .pdf or .png"),
        (["--lang", "fr"], 2, "Invalid value for '--lang'"),
    ],
)
def test_bad_arguments_are_one_line_with_exit_2(
    config: Path, args: list[str], code: int, message: str
) -> None:
    exit_code, _, stderr = run(config, PATIENT, *args)
    assert exit_code == code
    assert message in stderr
    assert "Traceback" not in stderr


def test_an_unknown_patient_is_exit_1(config: Path, tmp_path: Path) -> None:
    code, _, stderr = run(config, "nobody", "-o", str(tmp_path / "x.pdf"))
    assert code == 1
    assert stderr.strip() == "error: no patient 'nobody'; see `pulsegate patients list`"
    assert not (tmp_path / "x.pdf").exists()


def test_an_output_under_a_regular_file_is_exit_1(config: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "report"
    blocker.write_text("not a directory")
    out = blocker / "r.pdf"
    code, _, stderr = run(config, PATIENT, "--day", DAY.isoformat(), "-o", str(out))
    assert code == 1
    assert stderr.strip() == f"error: cannot write the report to {out}: Not a directory"


def test_a_missing_directory_is_exit_1(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "r.pdf"
    code, _, stderr = run(config, PATIENT, "--day", DAY.isoformat(), "-o", str(out))
    assert code == 1
    assert stderr.strip() == f"error: cannot write the report to {out}: No such file or directory"
