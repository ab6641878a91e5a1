"""`pulsegate decode` on recorded vectors and a real serial capture, and `pulsegate convert` on
real Contec SpO2 Assistant files, a written O2Ring night and the generic CSV itself."""

from __future__ import annotations

import calendar
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from devices.protocols.catalog import all_protocols, all_recording_formats
from devices.protocols.oximeter_viatom_oxy_file import O2RingSample, encode_o2ring_file
from gateway.cli import main
from gateway.decode_cli import FORMAT_CHOICES, convert, decode

TESTS = Path(__file__).parents[1]
VECTOR_DIR = TESTS / "devices" / "protocols" / "vectors"
CONTEC = TESTS / "data" / "contec"
CMS60CW = CONTEC / "contec_spo2assistant_CMS60CW_20111017200058.SpO2"
CMS50H = CONTEC / "contec_spo2assistant_demo_CMS50H.SpO2"
SESSION = CONTEC / "contec_cms60c_v7_serial_session.bin"
HEADER = "timestamp,spo2,pulse,pi,temp_c"


def _run(command: Any, args: list[str]) -> Result:
    result = CliRunner().invoke(command, args)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _vector(protocol: str, vector_id: str) -> dict[str, Any]:
    document = json.loads((VECTOR_DIR / f"{protocol}.json").read_text())
    (vector,) = [v for v in document["vectors"] if v["id"] == vector_id]
    return dict(vector)


# --- decode -------------------------------------------------------------------------------------


def test_decode_berrymed_bci_vector_b1() -> None:
    result = _run(decode, ["berrymed-bci", "87 32 05 48 62"])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert _json_lines(result.stdout) == [
        {"protocol": "berrymed-bci", "metric": "spo2_percent", "value": 98, "quality": [],
         "device_time": None, "site": None},
        {"protocol": "berrymed-bci", "metric": "pulse_bpm", "value": 72, "quality": [],
         "device_time": None, "site": None},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("protocol", "vector_id"),
    [
        ("berrymed-bci", "B3"),
        ("berrymed-bci-rr", "RR1"),
        ("hts", "T1"),
        ("hts", "T4"),
        ("berrymed-berry", "B7"),
    ],
)
def test_decode_prints_the_readings_the_vector_file_expects(protocol: str, vector_id: str) -> None:
    vector = _vector(protocol, vector_id)
    result = _run(decode, [protocol, vector["hex"]])
    assert result.exit_code == 0, result.stderr
    printed = _json_lines(result.stdout)
    assert [p["protocol"] for p in printed] == [protocol] * len(vector["readings"])
    expected = [
        (r["metric"], r["value"], r.get("quality", []), r.get("site")) for r in vector["readings"]
    ]
    assert [(p["metric"], p["value"], p["quality"], p["site"]) for p in printed] == expected
    for line, reading in zip(printed, vector["readings"], strict=True):
        time_s = reading.get("device_time_s")
        stamp = None if time_s is None else calendar.timegm(_utc_fields(line["device_time"]))
        assert stamp == time_s


def _utc_fields(text: str) -> tuple[int, ...]:
    """The fields of a `YYYY-MM-DDTHH:MM:SSZ` stamp, for timegm."""
    assert text.endswith("Z")
    date, clock = text[:-1].split("T")
    return (*map(int, date.split("-")), *map(int, clock.split(":")), 0, 0, 0)


def test_hts_device_time_and_site_are_printed() -> None:
    result = _run(decode, ["hts", "06 b0 0e 00 fe dc 07 0c 05 0b 32 1b 04"])
    (line,) = _json_lines(result.stdout)
    assert (line["value"], line["device_time"], line["site"]) == (
        37.6,
        "2012-12-05T11:50:27Z",
        "finger",
    )


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_frame_split_over_two_arguments_decodes_once(cut: int) -> None:
    frame = "87320548 62"
    hex_digits = frame.replace(" ", "")
    result = _run(decode, ["berrymed-bci", hex_digits[: 2 * cut], hex_digits[2 * cut :]])
    assert result.exit_code == 0
    assert [(p["metric"], p["value"]) for p in _json_lines(result.stdout)] == [
        ("spo2_percent", 98),
        ("pulse_bpm", 72),
    ]


def test_colons_and_spaces_are_allowed_inside_hex() -> None:
    result = _run(decode, ["berrymed-bci", "87:32:05:48:62", " 88 28 04 4b 61 "])
    assert [p["value"] for p in _json_lines(result.stdout)] == [98, 72, 97, 75]


@pytest.mark.parametrize("bad", ["87 3g", "873", "0x87"])
def test_bad_hex_is_a_usage_error_before_anything_is_decoded(bad: str) -> None:
    result = _run(decode, ["berrymed-bci", "87 32 05 48 62", bad])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: argument 2 is not hex: {bad!r}\n"


def test_unknown_protocol_lists_the_known_ones() -> None:
    result = _run(decode, ["berrymed", "87 32 05 48 62"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown protocol 'berrymed'; known protocols: ")
    for name in all_protocols():
        assert name in result.stderr


def test_decode_error_is_reported_and_decoding_goes_on_with_exit_1() -> None:
    result = _run(decode, ["hts", "00 72 01", "00 72 01 00 ff", "--stats"])
    assert result.exit_code == 1
    assert [(p["metric"], p["value"]) for p in _json_lines(result.stdout)] == [("temp_c", 37)]
    error, stats = result.stderr.splitlines()
    assert error.startswith("error: hts: ") and error.endswith("in 00 72 01")
    assert json.loads(stats).keys() == {"frames", "skipped_bytes", "bad_frames", "dropped_values"}


def test_stats_are_json_on_stderr() -> None:
    result = _run(decode, ["berrymed-bci", "ff 87 32 05 48 62", "--stats"])
    assert result.exit_code == 0
    assert json.loads(result.stderr)["frames"] == 1
    assert json.loads(result.stderr)["skipped_bytes"] == 1


def test_real_serial_capture_from_a_file() -> None:
    # The session's figures are those of tests/devices/protocols/test_oximeter_contec_v7.py:
    # 1,296 real-time packets, of which 66 with values.
    result = _run(decode, ["contec-v7", "--file", str(SESSION), "--stats"])
    assert result.exit_code == 0
    printed = _json_lines(result.stdout)
    assert len(printed) == 2 * 1296
    values = Counter(
        (spo2["value"], pulse["value"])
        for spo2, pulse in zip(printed[::2], printed[1::2], strict=True)
        if spo2["quality"] == []
    )
    assert values == {(98, 82): 48, (98, 81): 18}
    assert json.loads(result.stderr)["frames"] > 1296


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a PROTOCOL"),
        (["berrymed-bci"], "give HEX arguments or --file"),
        (["berrymed-bci", "00", "--file", str(SESSION)], "not both"),
        (["berrymed-bci", "--file", "/nonexistent/capture.bin"], "cannot read"),
        (["--list", "berrymed-bci"], "--list takes no"),
    ],
)
def test_decode_usage_errors(args: list[str], message: str) -> None:
    result = _run(decode, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


def test_list_names_every_protocol_and_recording_format() -> None:
    result = _run(decode, ["--list"])
    assert result.exit_code == 0
    names = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert set(all_protocols()) <= names
    assert set(all_recording_formats()) | {"csv"} <= names
    for spec in all_protocols().values():
        assert spec.title in result.stdout


def test_commands_are_registered_on_the_main_group(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    result = _run(main, ["--config", str(config), "decode", "berrymed-bci", "87 32 05 48 62"])
    assert result.exit_code == 0
    assert len(_json_lines(result.stdout)) == 2
    result = _run(main, ["--config", str(config), "convert", str(CMS60CW)])
    assert result.exit_code == 0
    assert result.stdout.startswith(HEADER + "\n")


# --- convert ------------------------------------------------------------------------------------

# Figures established by tests/devices/protocols/test_oximeter_contec_files.py.
REAL_FILES = [
    # path, samples, first row, last timestamp, summary
    (
        CMS60CW,
        42,
        "2011-10-17T20:00:25Z,99,67,,",
        "2011-10-17T20:01:06Z",
        "contec-spo2: model CMS60CW, start 2011-10-17T20:00:25Z, 42 samples, "
        "missing spo2 0, pulse 0",
    ),
    (
        CMS50H,
        406,
        "2010-05-26T11:43:58Z,99,,,",
        "2010-05-26T11:50:43Z",
        "contec-spo2: model CMS50H, start 2010-05-26T11:43:58Z, 406 samples, "
        "missing spo2 0, pulse 1",
    ),
]


@pytest.mark.parametrize(("path", "samples", "first", "last_time", "summary"), REAL_FILES)
def test_convert_real_contec_files(
    path: Path, samples: int, first: str, last_time: str, summary: str
) -> None:
    result = _run(convert, [str(path)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == HEADER
    assert len(lines) == 1 + samples
    assert lines[1] == first
    assert lines[-1].startswith(last_time + ",")
    assert result.stderr == summary + "\n"


def test_utc_offset_moves_device_clock_times_to_utc() -> None:
    result = _run(convert, [str(CMS60CW), "--utc-offset", "8"])
    assert result.stdout.splitlines()[1] == "2011-10-17T12:00:25Z,99,67,,"
    assert "start 2011-10-17T12:00:25Z" in result.stderr


def test_output_file_gets_the_same_csv_as_stdout(tmp_path: Path) -> None:
    out = tmp_path / "night.csv"
    to_file = _run(convert, [str(CMS50H), "-o", str(out)])
    assert to_file.exit_code == 0
    assert to_file.stdout == ""
    assert out.read_text() == _run(convert, [str(CMS50H)]).stdout


def test_convert_o2ring_night(tmp_path: Path) -> None:
    start_s = calendar.timegm((2025, 3, 6, 22, 20, 56))
    samples = [O2RingSample(92, 78), O2RingSample(None, None), O2RingSample(95, 76)]
    night = tmp_path / "20250306222056"
    night.write_bytes(encode_o2ring_file(start_s, samples))
    result = _run(convert, [str(night)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"{HEADER}\n"
        "2025-03-06T22:20:56Z,92,78,,\n"
        "2025-03-06T22:21:00Z,,,,\n"
        "2025-03-06T22:21:04Z,95,76,,\n"
    )
    assert result.stderr == (
        "o2ring: model -, start 2025-03-06T22:20:56Z, 3 samples, missing spo2 1, pulse 1\n"
    )


def test_csv_converts_back_to_the_same_csv(tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    _run(convert, [str(CMS50H), "-o", str(first)])
    for format_name in ("auto", "csv"):
        again = _run(convert, [str(first), "--format", format_name])
        assert again.exit_code == 0
        assert again.stdout == first.read_text()
        assert again.stderr.startswith("csv: model -, start 2010-05-26T11:43:58Z, 406 samples")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("2024-03-01T22:00:00Z,98,61\n", "line 2: expected 5 fields, got 3"),
        ("2024-03-01T22:00:00Z,98,61,,\nnoon,97,60,,\n", "line 3: timestamp 'noon' is not"),
        ("2024-03-01T22:00:00Z,98,300,,\n", "line 2: pulse 300 is outside"),
    ],
)
def test_bad_csv_lines_are_named(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\n{rows}")
    result = _run(convert, [str(path), "--format", "csv"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path} {message}")
    assert len(result.stderr.splitlines()) == 1


def test_csv_with_a_wrong_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("time,spo2\n2024-03-01T22:00:00Z,98\n")
    result = _run(convert, [str(path), "--format", "csv"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path} line 1: expected the header")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(SESSION)], "is not a recording format pulsegate knows (contec-spo2, o2ring, csv)"),
        (["/nonexistent/night.SpO2"], "cannot read /nonexistent/night.SpO2"),
        ([str(CONTEC)], "cannot read"),
        ([str(CMS50H), "--format", "o2ring"], "is not a valid o2ring file: o2ring: "),
        ([str(CMS50H), "-o", "/nonexistent/out.csv"], "cannot write /nonexistent/out.csv"),
        ([str(CONTEC / "README.md"), "--format", "csv"], "line 1: expected the header"),
    ],
)
def test_convert_errors_are_one_line_with_exit_2(args: list[str], message: str) -> None:
    result = _run(convert, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_utc_offset_is_refused_for_csv(tmp_path: Path) -> None:
    path = tmp_path / "night.csv"
    _run(convert, [str(CMS60CW), "-o", str(path)])
    result = _run(convert, [str(path), "--utc-offset", "8"])
    assert result.exit_code == 2
    assert "--utc-offset is for device files" in result.stderr


def test_format_choices_are_every_recording_format_plus_auto_and_csv() -> None:
    assert not {"auto", "csv"} & set(all_recording_formats())
    assert ["auto", *all_recording_formats(), "csv"] == FORMAT_CHOICES
