"""Device status and data-gap records: when a patient's continuous device stops giving data.

Pure: the gateway feeds, for each watched device, what one check window showed (`Seen`); the
state machine (`step_watch`) says whether the device went silent (no data at all), lost the
signal (data, but no valid SpO2 / pulse: no finger, searching, sensor fault) or came back, and
closes a gap ("no data from device X for patient P, 02:10-03:40, reasons") when valid data
returns. Thermometers and other spot devices are not watched: they are silent by nature.

Payloads (schema 1), topic <prefix>/<site>/<gateway>/devices, QoS 1, priority STATUS:

kind "device", one per change of a device's data state:
  message_id    uuid5 of (gateway, device, event, event time): a resend carries the same id
  gateway, site, patient (pseudonymous), device (the gateway's device id)
  event         silent (no data at all) | no_signal (data without a valid SpO2 or pulse) |
                back (valid data again)
  event_time    ISO 8601 UTC when the gateway noticed it (back: the first valid reading)
  since         ISO 8601 UTC of the last valid reading before the gap
  reasons       what the gateway knew, in the order it learnt it: "no data; link waiting:
                device not found", "no data received", "no finger in the probe",
                "searching for a pulse", "sensor fault", "no valid value",
                "gateway was not running" (each at most 128 characters)

kind "gap", when a gap closes (valid data again):
  message_id    uuid5 of (gateway, device, start)
  gateway, site, patient, device
  start_time    ISO 8601 UTC of the last valid reading before the gap
  end_time      ISO 8601 UTC of the first valid reading after it
  duration_s    end - start, in seconds (integer)
  reasons       as above
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from enum import StrEnum

from devices.protocols.reading import Quality
from sync.payload import (
    MAX_TEXT_CHARS,
    SCHEMA_VERSION,
    OutboxMessage,
    OutboxPriority,
    iso_utc,
)

DEVICES_LEAF = "devices"
SILENT_AFTER_S = 120.0  # no data at all for this long: the device is silent
NO_SIGNAL_AFTER_S = 300.0  # data, but no valid SpO2 / pulse for this long: no signal
_NAMESPACE = uuid.UUID("0b7e4f0e-6a51-4a55-9c54-2b8f5a1d7c33")
_FLAG_REASONS = (
    (Quality.FINGER_OUT, "no finger in the probe"),
    (Quality.SEARCHING, "searching for a pulse"),
    (Quality.SENSOR_FAULT, "sensor fault"),
)
NO_DATA_REASON = "no data received"
GATEWAY_DOWN_REASON = "gateway was not running"


class DataState(StrEnum):
    OK = "ok"
    SILENT = "silent"
    NO_SIGNAL = "no_signal"


class DeviceEventKind(StrEnum):
    SILENT = "silent"
    NO_SIGNAL = "no_signal"
    BACK = "back"


@dataclass(frozen=True, slots=True)
class Limits:
    silent_after_s: float = SILENT_AFTER_S
    no_signal_after_s: float = NO_SIGNAL_AFTER_S


@dataclass(frozen=True, slots=True)
class DeviceWatch:
    """What the gateway remembers of one watched device (stored between checks)."""

    device_id: str
    patient_id: str
    state: DataState
    since_s: float  # last valid reading before the current gap (meaningless while OK)
    last_data_s: float
    last_valid_s: float
    reasons: tuple[str, ...]
    checked_through_s: float

    @classmethod
    def start(cls, device_id: str, patient_id: str, now_s: float) -> DeviceWatch:
        """A device first watched at `now_s` counts as having given valid data then."""
        return cls(device_id, patient_id, DataState.OK, now_s, now_s, now_s, (), now_s)


@dataclass(frozen=True, slots=True)
class Seen:
    """What one check window showed of a device's readings."""

    first_valid_s: float | None = None
    last_valid_s: float | None = None
    last_data_s: float | None = None
    invalid_flags: int = 0  # OR of the quality flags of readings without a value


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    device_id: str
    patient_id: str
    kind: DeviceEventKind
    event_s: float
    since_s: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Gap:
    device_id: str
    patient_id: str
    start_s: float
    end_s: float
    reasons: tuple[str, ...]


Record = DeviceEvent | Gap


def signal_reason(invalid_flags: int) -> str:
    """Why readings came without a value, from their quality flags."""
    for flag, reason in _FLAG_REASONS:
        if invalid_flags & flag:
            return reason
    return "no valid value"


def link_reason(state: str | None, last_error: str | None) -> str:
    """Why no data came, from the device link's last known status (None: none known)."""
    if state is None:
        return NO_DATA_REASON
    reason = f"no data; link {state}" + (f": {last_error}" if last_error else "")
    return reason[:MAX_TEXT_CHARS]


def _added(reasons: tuple[str, ...], reason: str) -> tuple[str, ...]:
    return reasons if reason in reasons else (*reasons, reason)


def step_watch(
    watch: DeviceWatch, seen: Seen, through_s: float, why_silent: str, limits: Limits
) -> tuple[DeviceWatch, list[Record]]:
    """The device's state after a check window ending at `through_s`, and the records that
    the change produced (oldest first). `why_silent` is the reason given if it went silent."""
    last_data = max(watch.last_data_s, seen.last_data_s or watch.last_data_s)
    last_valid = max(watch.last_valid_s, seen.last_valid_s or watch.last_valid_s)
    state, since, reasons = watch.state, watch.since_s, watch.reasons
    records: list[Record] = []
    ids = (watch.device_id, watch.patient_id)
    if state is not DataState.OK and seen.first_valid_s is not None:
        back_s = seen.first_valid_s
        records.append(DeviceEvent(*ids, DeviceEventKind.BACK, back_s, since, reasons))
        records.append(Gap(*ids, since, back_s, reasons))
        state, reasons = DataState.OK, ()
    silent = through_s - last_data >= limits.silent_after_s
    no_signal = not silent and through_s - last_valid >= limits.no_signal_after_s
    new_state = state
    if silent and state is not DataState.SILENT:
        new_state, reasons = DataState.SILENT, _added(reasons, why_silent)
    elif no_signal and state is DataState.OK:
        new_state, reasons = DataState.NO_SIGNAL, (signal_reason(seen.invalid_flags),)
    elif state is DataState.SILENT and not silent:  # data again, but nothing valid yet
        new_state = DataState.NO_SIGNAL
        reasons = _added(reasons, signal_reason(seen.invalid_flags))
    if new_state is not state:
        if state is DataState.OK:
            since = last_valid
        kind = DeviceEventKind(new_state.value)
        records.append(DeviceEvent(*ids, kind, through_s, since, reasons))
    after = dataclasses.replace(
        watch,
        state=new_state,
        since_s=since,
        last_data_s=last_data,
        last_valid_s=last_valid,
        reasons=reasons,
        checked_through_s=through_s,
    )
    return after, records


def note_downtime(watch: DeviceWatch) -> DeviceWatch:
    """The gateway was not running during part of this device's open gap."""
    if watch.state is DataState.OK:
        return watch
    return dataclasses.replace(watch, reasons=_added(watch.reasons, GATEWAY_DOWN_REASON))


def devices_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/{gateway_id}/{DEVICES_LEAF}"


def record_message(prefix: str, site: str, gateway_id: str, record: Record) -> OutboxMessage:
    """The outbox message (priority STATUS) of a device event or a closed gap."""
    body: dict[str, object]
    if isinstance(record, DeviceEvent):
        key = f"device/{gateway_id}/{record.device_id}/{record.kind}/{record.event_s:.3f}"
        body = {
            "kind": "device",
            "event": record.kind.value,
            "event_time": iso_utc(record.event_s),
            "since": iso_utc(record.since_s),
        }
    else:
        key = f"gap/{gateway_id}/{record.device_id}/{record.start_s:.3f}"
        body = {
            "kind": "gap",
            "start_time": iso_utc(record.start_s),
            "end_time": iso_utc(record.end_s),
            "duration_s": round(record.end_s - record.start_s),
        }
    message_id = str(uuid.uuid5(_NAMESPACE, key))
    body |= {
        "schema": SCHEMA_VERSION,
        "message_id": message_id,
        "gateway": gateway_id,
        "site": site,
        "patient": record.patient_id,
        "device": record.device_id,
        "reasons": list(record.reasons),
    }
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return OutboxMessage(
        OutboxPriority.STATUS, devices_topic(prefix, site, gateway_id), message_id, payload
    )


def record_time_s(record: Record) -> float:
    """The event time of a record (its outbox row's time: `historical` is judged from it)."""
    return record.event_s if isinstance(record, DeviceEvent) else record.end_s
