"""`pulsegate replay`: the alert timeline of a recording, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from devices.recording_csv import GenericSample, write_generic_csv
from gateway.cli import main

DATA = Path(__file__).parents[1] / "data" / "contec"
START_S = 1_700_000_000


def write_csv(path: Path, spo2: list[float | None]) -> Path:
    rows = [GenericSample(START_S + i, value, 80.0) for i, value in enumerate(spo2)]
    with path.open("w", newline="") as out:
        write_generic_csv(rows, out)
    return path


def test_replay_of_a_desaturation_gives_s1_and_s2_with_stable_ids(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "night.csv", [97.0] * 600 + [85.0] * 300 + [97.0] * 1200)
    runner = CliRunner()
    first = runner.invoke(main, ["replay", str(csv_path), "--tier", "yellow", "--json"])
    assert first.exit_code == 0, first.output
    events = [json.loads(line) for line in first.stdout.splitlines()]
    raised = {(e["rule"], e["event"], e["priority"]) for e in events if e["event"] == "raised"}
    assert raised == {("S1", "raised", "HIGH"), ("S2", "raised", "HIGH")}
    s1 = next(e for e in events if e["rule"] == "S1")
    # SatSeconds: 3 points below 88 % a second reach 50 in the 17th second at 85 %.
    assert s1["at"] == "2023-11-14T22:23:36Z"  # START_S + 600 + 16
    assert s1["details"]["trigger"] == "satseconds"
    again = runner.invoke(main, ["replay", str(csv_path), "--tier", "yellow", "--json"])
    assert again.stdout == first.stdout


def test_replay_as_copd_does_not_alert_at_86(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "copd.csv", [90.0] * 600 + [86.0] * 1200)
    result = CliRunner().invoke(main, ["replay", str(csv_path), "--profile", "copd", "--json"])
    assert result.exit_code == 0, result.output
    rules = {json.loads(line)["rule"] for line in result.stdout.splitlines()}
    assert not rules & {"S1", "S2"}


def test_replay_reads_a_real_contec_recording() -> None:
    recording = next(DATA.glob("*CMS50H*.SpO2"))
    result = CliRunner().invoke(main, ["replay", str(recording), "--utc-offset", "8"])
    assert result.exit_code == 0, result.output
    assert "contec-spo2: model" in result.stderr
    assert "alert events" in result.stderr


def test_replay_of_an_unknown_file_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.bin"
    bogus.write_bytes(b"\x00\x01nothing")
    result = CliRunner().invoke(main, ["replay", str(bogus)])
    assert result.exit_code == 2
    assert "is not a recording format pulsegate knows" in result.output
