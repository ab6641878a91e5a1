"""Bytes from devices to one row per device, metric and second."""

from __future__ import annotations

from devices.protocols.oximeter_berrymed import encode_bci_frame
from devices.protocols.reading import Quality
from devices.protocols.thermometer_hts import encode_temperature_measurement
from gateway.ingest import Ingest


def make_ingest() -> Ingest:
    ingest = Ingest()
    ingest.add_device("ox", "berrymed-bci")
    ingest.add_device("th", "hts")
    ingest.binding_history = {"ox": [(0.0, None, "p-1")], "th": [(0.0, None, "p-1")]}
    return ingest


def test_waveform_rate_stream_becomes_one_row_per_second() -> None:
    ingest = make_ingest()
    for tick in range(100):  # 100 frames a second, like a real BCI module
        ingest.on_bytes("ox", 1000.0 + tick / 100, encode_bci_frame(95 + tick % 3, 70))
    rows = ingest.drain(1001.0)
    assert [(r.metric, r.value, r.patient_id, r.ts_s) for r in rows] == [
        ("pulse_bpm", 70.0, "p-1", 1000.0),
        ("spo2_percent", 96.0, "p-1", 1000.0),
    ]


def test_nothing_is_drained_before_its_second_is_over() -> None:
    ingest = make_ingest()
    ingest.on_bytes("ox", 1000.2, encode_bci_frame(97, 70))
    assert ingest.drain(1000.9) == []
    assert len(ingest.drain(1001.0)) == 2


def test_finger_out_second_is_stored_as_missing_with_flags() -> None:
    ingest = make_ingest()
    ingest.on_bytes("ox", 5.5, encode_bci_frame(None, None, finger_out=True, searching=True))
    rows = ingest.drain(10)
    assert {r.value for r in rows} == {None}
    assert all(r.quality & Quality.FINGER_OUT for r in rows)


def test_a_valid_value_wins_over_a_finger_out_frame_in_the_same_second() -> None:
    ingest = make_ingest()
    ingest.on_bytes("ox", 5.1, encode_bci_frame(None, None, finger_out=True))
    ingest.on_bytes("ox", 5.6, encode_bci_frame(93, 80))
    rows = {r.metric: r for r in ingest.drain(10)}
    assert rows["spo2_percent"].value == 93.0


def test_malformed_thermometer_value_is_counted_not_raised() -> None:
    ingest = make_ingest()
    assert ingest.on_bytes("th", 1.0, b"\x00\x01") == 0
    assert ingest.devices["th"].decode_errors == 1
    assert ingest.on_bytes("th", 2.0, encode_temperature_measurement(38.4)) == 1
    assert [(r.metric, r.value) for r in ingest.drain(10)] == [("temp_c", 38.4)]


def test_a_reading_belongs_to_whoever_wore_the_device_at_its_second() -> None:
    ingest = make_ingest()
    ingest.binding_history = {"ox": [(0.0, 1005.0, "p-1"), (1005.0, None, "p-2")]}
    for second in range(1000, 1010):
        ingest.on_bytes("ox", second + 0.5, encode_bci_frame(97, 70))
    owners = {(r.ts_s, r.patient_id) for r in ingest.drain(2000) if r.metric == "spo2_percent"}
    assert owners == {(float(s), "p-1" if s < 1005 else "p-2") for s in range(1000, 1010)}


def test_a_device_unbound_at_its_second_belongs_to_nobody() -> None:
    ingest = make_ingest()
    ingest.binding_history = {"ox": [(0.0, 1000.0, "p-1")]}
    ingest.on_bytes("ox", 1001.5, encode_bci_frame(97, 70))
    assert {r.patient_id for r in ingest.drain(2000)} == {None}
