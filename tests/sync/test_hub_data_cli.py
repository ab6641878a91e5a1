"""`pulsegate hub summaries | gaps | raw-request | raw` on a hub database filled by the store
(no broker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from gateway.cli import main
from gateway.hub_data_cli import format_time, parse_time_s
from sync.hub_data_messages import parse_devices_message, parse_raw_answer, parse_summary
from sync.hub_raw_requests import list_raw_requests
from sync.hub_store import HubStore
from sync.payload import iso_utc
from sync.records import DeviceEventKind
from tests.sync.hub_data_samples import (
    GATEWAY,
    PATIENT,
    SITE,
    T0_S,
    device_message,
    gap_message,
    raw_chunk,
    summary,
)

WHERE = f"{SITE}/{GATEWAY}"
CHINA_H = 8.0


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = str(tmp_path / "hub.db")
    store = HubStore.open(url)
    store.record_data(parse_summary(SITE, GATEWAY, summary(0).payload.encode()), T0_S)
    for message in (
        device_message(DeviceEventKind.SILENT, 220),
        device_message(DeviceEventKind.BACK, 3700),
        gap_message(100, 3700),
        device_message(DeviceEventKind.NO_SIGNAL, 5000, device="ox-2"),
    ):
        store.record_data(parse_devices_message(SITE, GATEWAY, message.payload.encode()), T0_S)
    store.close()
    return url


def invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "empty.toml"
    config.write_text("")
    result = CliRunner().invoke(main, ["--config", str(config), "hub", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["summaries", "gaps", "raw-request", "raw"])
def test_every_new_hub_command_has_help(tmp_path: Path, command: str) -> None:
    code, out, _ = invoke(tmp_path, command, "--help")
    assert code == 0
    assert "Usage: main hub" in out and "--db" in out


NOW_S = 1_800_000_000
MIDNIGHT_UTC_S = 1_799_971_200  # 2027-01-15T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected_s"),
    [
        ("2027-01-15T00:00:00Z", MIDNIGHT_UTC_S),
        ("2027-01-15T08:00", MIDNIGHT_UTC_S),  # no zone: at --utc-offset, +08:00
        ("2027-01-15T02:00+02:00", MIDNIGHT_UTC_S),
        ("90m", NOW_S - 5400),
        ("1.5h", NOW_S - 5400),
        ("2d", NOW_S - 172_800),
    ],
)
def test_times_are_iso_with_or_without_a_zone_or_a_time_ago(text: str, expected_s: float) -> None:
    assert parse_time_s(text, CHINA_H, NOW_S) == expected_s


def test_a_bad_time_is_one_line_naming_the_option(tmp_path: Path, db: str) -> None:
    code, _, err = invoke(tmp_path, "summaries", WHERE, PATIENT, "--since", "yesterday", "--db", db)
    assert code == 2
    assert err.startswith("error: --since 'yesterday': expected an ISO 8601 time")
    assert len(err.splitlines()) == 1


def test_summaries_prints_the_minute_rows_in_local_time(tmp_path: Path, db: str) -> None:
    since = iso_utc(T0_S)
    code, out, _ = invoke(tmp_path, "summaries", GATEWAY, PATIENT, "--since", since, "--db", db)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 15 + 8
    first = format_time(T0_S, CHINA_H)
    assert lines[1].split() == [
        *first.split(), "spo2_percent", "n", "58", "missing", "2", "min", "93.5",
        "median", "95", "max", "96",
    ]  # fmt: skip
    assert first.endswith("+08:00")
    assert "n   0  missing  60  min      -  median      -" in lines[5]  # the probe-off minute
    code, out, _ = invoke(
        tmp_path, "summaries", WHERE, PATIENT, "--since", since, "--json", "--db", db
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {
        "minute_s": T0_S, "metric": "pulse_bpm", "n": 60, "missing": 0, "min": 70.0,
        "median": 72.5, "max": 80.0, "quality": 0,
    }  # fmt: skip
    code, out, _ = invoke(tmp_path, "summaries", WHERE, "p-other", "--since", since, "--db", db)
    assert (code, out) == (0, f"no summaries of p-other from {WHERE} in that time\n")


def test_summaries_as_fhir_observations_valid_against_the_r4_models(
    tmp_path: Path, db: str
) -> None:
    since = iso_utc(T0_S)
    code, out, _ = invoke(
        tmp_path, "summaries", WHERE, PATIENT, "--since", since, "--json", "--db", db
    )
    rows = [json.loads(line) for line in out.splitlines()]
    code, out, _ = invoke(
        tmp_path, "summaries", WHERE, PATIENT, "--since", since, "--fhir", "--db", db
    )
    assert code == 0
    bundle = Bundle.model_validate(json.loads(out))
    observations = [Observation.model_validate(e.resource.model_dump()) for e in bundle.entry]
    # Every minute of SpO2, pulse and temperature with a median, and nothing else.
    vital = [r for r in rows if r["metric"] in {"spo2_percent", "pulse_bpm", "temp_c"}]
    assert len(observations) == sum(r["median"] is not None for r in vital) > 0
    loinc = {"spo2_percent": "59408-5", "pulse_bpm": "8867-4", "temp_c": "8310-5"}
    ucum = {"spo2_percent": "%", "pulse_bpm": "/min", "temp_c": "Cel"}
    with_median = [r for r in vital if r["median"] is not None]
    for row, observation in zip(with_median, observations, strict=True):
        assert observation.code.coding[0].code == loinc[row["metric"]]
        assert observation.valueQuantity.code == ucum[row["metric"]]
        assert float(observation.valueQuantity.value) == row["median"]
        assert observation.effectivePeriod.start.timestamp() == row["minute_s"]
        assert observation.subject.identifier.value == PATIENT
    assert len({o.id for o in observations}) == len(observations)


def test_gaps_shows_devices_without_data_now_then_closed_gaps(tmp_path: Path, db: str) -> None:
    code, out, _ = invoke(
        tmp_path, "gaps", "--since", iso_utc(T0_S), "--utc-offset", "0", "--db", db
    )
    assert code == 0
    now, gap = out.splitlines()
    assert now.split()[:6] == ["NOW", WHERE, PATIENT, "device", "ox-2", "no_signal"]
    assert gap.split()[:4] == ["gap", WHERE, PATIENT, "device"]
    assert "2027-01-15 08:01 +00:00 to 2027-01-15 09:01 +00:00 (60 min)" in gap
    assert "(no data; link waiting: device not found; no finger in the probe)" in gap
    code, out, _ = invoke(tmp_path, "gaps", "--since", iso_utc(T0_S + 4000), "--json", "--db", db)
    assert [json.loads(line)["open"] for line in out.splitlines()] == [True]


def test_raw_request_is_queued_once_and_its_answer_is_shown(tmp_path: Path, db: str) -> None:
    span = ("--from", iso_utc(T0_S), "--to", iso_utc(T0_S + 1200))
    code, out, _ = invoke(
        tmp_path, "raw-request", GATEWAY, PATIENT, *span, "--by", "dr-li", "--db", db
    )
    assert code == 0, out
    assert f"for {PATIENT} on {WHERE}" in out and out.rstrip().endswith("the running hub sends it")
    code, out, _ = invoke(tmp_path, "raw-request", WHERE, PATIENT, *span, "--db", db)
    assert out.rstrip().endswith("already asked for (not sent again)")
    code, out, _ = invoke(tmp_path, "raw", "--db", db)
    assert out.rstrip().endswith("by dr-li: waiting for the hub to send it")

    store = HubStore.open(db)
    [request] = list_raw_requests(store)
    with store.transaction() as tx:
        tx.run("UPDATE hub_raw_requests SET published_s = ?", (T0_S + 10,))
    chunk = raw_chunk(request["message_id"], 0, 2, 0)
    store.record_data(parse_raw_answer(SITE, GATEWAY, chunk.payload.encode()), T0_S + 20)
    store.close()
    code, out, _ = invoke(tmp_path, "raw", "--db", db)
    assert out.rstrip().endswith("1 of 2 chunks (partial), 600 readings")
    window = ("--from", iso_utc(T0_S + 3), "--to", iso_utc(T0_S + 5))
    code, out, _ = invoke(
        tmp_path, "raw", GATEWAY, PATIENT, *window, "--utc-offset", "0", "--db", db
    )
    assert out.splitlines() == [
        "  2027-01-15 08:00:03.250 +00:00  spo2_percent           93  quality 0",
        "  2027-01-15 08:00:04.250 +00:00  spo2_percent            -  quality 0",
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--from", "2027-01-15T00:00Z", "--to", "2027-01-15T07:00Z"), "at most 6 h later"),
        (("--from", "2027-01-15T00:00Z", "--to", "2027-01-14T23:00Z"), "must be after --from"),
        (("--from", "2027-01-15T00:00Z", "--to", "2027-01-15T01:00Z", "--by", " "), "--by"),
    ],
)
def test_a_bad_raw_request_is_refused_with_one_line(
    tmp_path: Path, db: str, args: tuple[str, ...], error: str
) -> None:
    code, _, err = invoke(tmp_path, "raw-request", WHERE, PATIENT, *args, "--db", db)
    assert code == 2
    assert error in err and len(err.splitlines()) == 1


def test_a_gateway_the_hub_never_heard_of_must_be_given_with_its_site(
    tmp_path: Path, db: str
) -> None:
    code, _, err = invoke(tmp_path, "summaries", "gw-9", PATIENT, "--db", db)
    assert code == 2
    assert "gateway 'gw-9' is not heard from yet: give it as SITE/GATEWAY" in err
