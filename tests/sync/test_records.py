"""Device status and data-gap records: the state machine and the payloads (pure)."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.reading import Quality
from sync.payload import OutboxPriority
from sync.records import (
    DataState,
    DeviceEvent,
    DeviceEventKind,
    DeviceWatch,
    Gap,
    Limits,
    Record,
    Seen,
    link_reason,
    record_message,
    step_watch,
)

T0_S = 1_800_000_000.0
LIMITS = Limits(silent_after_s=120, no_signal_after_s=300)
WHY = "no data; link waiting: device not found"


def run(windows: list[tuple[float, Seen]]) -> tuple[DeviceWatch, list[Record]]:
    watch = DeviceWatch.start("ox-1", "p-1", T0_S)
    records: list[Record] = []
    for through_s, seen in windows:
        watch, produced = step_watch(watch, seen, T0_S + through_s, WHY, LIMITS)
        records.extend(produced)
    return watch, records


def valid(first_s: float, last_s: float) -> Seen:
    return Seen(T0_S + first_s, T0_S + last_s, T0_S + last_s, 0)


def test_data_flowing_produces_no_record() -> None:
    watch, records = run([(30, valid(0, 29)), (60, valid(30, 59)), (90, valid(60, 89))])
    assert records == []
    assert watch.state is DataState.OK


def test_silence_shorter_than_the_limit_is_not_reported() -> None:
    _, records = run([(30, valid(0, 29)), (60, Seen()), (120, Seen()), (148, Seen())])
    assert records == []


def test_a_silent_device_is_reported_once_and_its_gap_when_it_comes_back() -> None:
    watch, records = run(
        [(30, valid(0, 29)), (150, Seen()), (300, Seen()), (3600, valid(3500, 3599))]
    )
    assert watch.state is DataState.OK
    assert records == [
        DeviceEvent("ox-1", "p-1", DeviceEventKind.SILENT, T0_S + 150, T0_S + 29, (WHY,)),
        DeviceEvent("ox-1", "p-1", DeviceEventKind.BACK, T0_S + 3500, T0_S + 29, (WHY,)),
        Gap("ox-1", "p-1", T0_S + 29, T0_S + 3500, (WHY,)),
    ]


def test_data_without_a_valid_value_for_long_is_no_signal_with_the_flag_as_reason() -> None:
    windows = [(10, valid(0, 10))] + [
        (10 + 60 * i, Seen(None, None, T0_S + 10 + 60 * i, int(Quality.FINGER_OUT)))
        for i in range(1, 7)
    ]
    watch, records = run(windows)
    assert watch.state is DataState.NO_SIGNAL
    [event] = records
    assert isinstance(event, DeviceEvent)
    assert (event.kind, event.event_s, event.since_s, event.reasons) == (
        DeviceEventKind.NO_SIGNAL,
        T0_S + 310,
        T0_S + 10,
        ("no finger in the probe",),
    )


def test_silence_then_data_without_values_keeps_one_gap_with_both_reasons() -> None:
    fault = Seen(None, None, T0_S + 400, int(Quality.SENSOR_FAULT))
    watch, records = run([(10, valid(0, 10)), (200, Seen()), (400, fault), (500, valid(450, 499))])
    kinds = [r.kind for r in records if isinstance(r, DeviceEvent)]
    assert kinds == [DeviceEventKind.SILENT, DeviceEventKind.NO_SIGNAL, DeviceEventKind.BACK]
    [gap] = [r for r in records if isinstance(r, Gap)]
    assert (gap.start_s, gap.end_s, gap.reasons) == (T0_S + 10, T0_S + 450, (WHY, "sensor fault"))
    assert watch.reasons == ()


def test_link_reason_names_the_link_state_and_error_or_says_nothing_came() -> None:
    assert link_reason("waiting", "device not found") == WHY
    assert link_reason("connected", None) == "no data; link connected"
    assert link_reason(None, None) == "no data received"
    assert len(link_reason("waiting", "x" * 500)) == 128


def test_gap_payload_has_times_duration_and_a_stable_id() -> None:
    gap = Gap("ox-1", "p-1", T0_S + 29.5, T0_S + 3500, (WHY,))
    message = record_message("pulsegate", "village-1", "gw-1", gap)
    again = record_message("pulsegate", "village-1", "gw-1", gap)
    assert message == again
    assert message.priority is OutboxPriority.STATUS
    assert message.topic == "pulsegate/village-1/gw-1/devices"
    body = json.loads(message.payload)
    assert body == {
        "schema": 1,
        "kind": "gap",
        "message_id": message.message_id,
        "gateway": "gw-1",
        "site": "village-1",
        "patient": "p-1",
        "device": "ox-1",
        "start_time": "2027-01-15T08:00:29.500Z",
        "end_time": "2027-01-15T08:58:20.000Z",
        "duration_s": 3470,
        "reasons": [WHY],
    }


def test_device_event_payload_names_the_event_and_since() -> None:
    event = DeviceEvent("ox-1", "p-1", DeviceEventKind.SILENT, T0_S + 150, T0_S + 29, (WHY,))
    body = json.loads(record_message("pulsegate", "v", "gw-1", event).payload)
    assert (body["kind"], body["event"], body["event_time"], body["since"]) == (
        "device",
        "silent",
        "2027-01-15T08:02:30.000Z",
        "2027-01-15T08:00:29.000Z",
    )


_windows = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=400),  # seconds since the previous check
        st.sampled_from(["valid", "invalid", "none"]),
    ),
    max_size=40,
)


@given(_windows)
def test_gaps_are_ordered_disjoint_and_each_follows_a_silence_or_no_signal(
    steps: list[tuple[int, str]],
) -> None:
    through = 0.0
    windows: list[tuple[float, Seen]] = []
    for delta, kind in steps:
        start, through = through, through + delta
        if kind == "valid":
            windows.append((through, valid(start, through - 0.5)))
        elif kind == "invalid":
            windows.append((through, Seen(None, None, T0_S + through - 0.5, 1)))
        else:
            windows.append((through, Seen()))
    _, records = run(windows)
    gaps = [r for r in records if isinstance(r, Gap)]
    for before, after in itertools.pairwise(gaps):
        assert before.end_s <= after.start_s
    for gap in gaps:
        assert gap.end_s - gap.start_s >= LIMITS.silent_after_s
        assert gap.reasons
    events = [r.kind for r in records if isinstance(r, DeviceEvent)]
    assert events.count(DeviceEventKind.BACK) == len(gaps)
    assert events.count(DeviceEventKind.SILENT) + events.count(DeviceEventKind.NO_SIGNAL) >= len(
        gaps
    )
