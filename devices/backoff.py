"""When to try a device again: failure classes, their backoff, and the adapter-recovery ladder.

Pure functions over plain values (strings, counts, a jitter number), so the policy is tested
with tables and the transports only carry it out. The classes follow what BlueZ and pyserial
report: a lost link is retried at once and then slowly, a device that is not advertising is
looked for less often, an adapter that answers `InProgress` or `NotReady` is given time and,
if that does not help, discovery is stopped and then the adapter power-cycled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

JITTER_FRACTION = 0.2  # each delay is spread by +-20 % so links to many devices do not align


class FailureKind(StrEnum):
    """Why a link ended or could not be made; decides how long to wait before the next try."""

    LINK_LOST = "link_lost"  # was connected and streaming; the link dropped
    SILENT = "silent"  # connected but no data for too long; we dropped it
    TRANSIENT = "transient"  # connect aborted, timed out, GATT error: radio conditions
    NOT_FOUND = "not_found"  # not advertising: switched off, out of range, asleep
    ADAPTER_BUSY = "adapter_busy"  # org.bluez.Error.InProgress
    ADAPTER_NOT_READY = "adapter_not_ready"  # NotReady, powered off, no adapter, no bluetoothd
    MISMATCH = "mismatch"  # the device lacks the protocol's characteristics: wrong --protocol
    PORT_MISSING = "port_missing"  # serial: the port does not exist (unplugged)
    PORT_ERROR = "port_error"  # serial: the port failed while open (unplugged mid-read)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: `first_s`, times `factor` per failed attempt, capped at `max_s`."""

    first_s: float
    max_s: float
    factor: float = 2.0


POLICIES: dict[FailureKind, Backoff] = {
    FailureKind.LINK_LOST: Backoff(0.5, 30.0),
    FailureKind.SILENT: Backoff(1.0, 60.0),
    FailureKind.TRANSIENT: Backoff(1.0, 60.0),
    FailureKind.NOT_FOUND: Backoff(5.0, 120.0, 1.5),
    FailureKind.ADAPTER_BUSY: Backoff(2.0, 30.0),
    FailureKind.ADAPTER_NOT_READY: Backoff(5.0, 60.0),
    FailureKind.MISMATCH: Backoff(60.0, 600.0),
    FailureKind.PORT_MISSING: Backoff(1.0, 30.0, 1.5),
    FailureKind.PORT_ERROR: Backoff(0.5, 30.0),
}


def backoff_delay_s(kind: FailureKind, attempt: int, jitter: float, scale: float = 1.0) -> float:
    """Seconds to wait before retry number `attempt` (1 = the first retry) after `kind`.

    `jitter` is a number in [-1, 1] (the caller draws it), spreading the delay by
    +-JITTER_FRACTION; `scale` shrinks every delay (tests run the policy in seconds).
    """
    if attempt < 1:
        raise ValueError(f"attempt {attempt}: attempts count from 1")
    if not -1.0 <= jitter <= 1.0:
        raise ValueError(f"jitter {jitter} is outside [-1, 1]")
    policy = POLICIES[kind]
    # The exponent is capped so a link down for weeks cannot overflow the float.
    base_s = min(policy.max_s, policy.first_s * policy.factor ** min(attempt - 1, 64))
    return base_s * (1.0 + JITTER_FRACTION * jitter) * scale


# D-Bus error names (BlueZ, and the bus itself) and message fragments, most specific first.
_BY_ERROR_NAME: tuple[tuple[str, FailureKind], ...] = (
    ("org.bluez.Error.InProgress", FailureKind.ADAPTER_BUSY),
    ("org.bluez.Error.NotReady", FailureKind.ADAPTER_NOT_READY),
    ("org.bluez.Error.NotAvailable", FailureKind.ADAPTER_NOT_READY),
    ("org.freedesktop.DBus.Error.ServiceUnknown", FailureKind.ADAPTER_NOT_READY),
    ("org.freedesktop.DBus.Error.UnknownObject", FailureKind.NOT_FOUND),
    ("org.bluez.Error.DoesNotExist", FailureKind.NOT_FOUND),
)
_BY_MESSAGE: tuple[tuple[str, FailureKind], ...] = (
    ("InProgress", FailureKind.ADAPTER_BUSY),
    ("in progress", FailureKind.ADAPTER_BUSY),
    ("NotReady", FailureKind.ADAPTER_NOT_READY),
    ("No Bluetooth adapters", FailureKind.ADAPTER_NOT_READY),
    ("No powered Bluetooth adapters", FailureKind.ADAPTER_NOT_READY),
    ("not found", FailureKind.NOT_FOUND),
)


def classify_ble_error(dbus_error: str | None, message: str) -> FailureKind:
    """The failure class of a BLE error, from its D-Bus error name (if any) and its text."""
    if dbus_error:
        for name, kind in _BY_ERROR_NAME:
            if dbus_error == name:
                return kind
    for fragment, kind in _BY_MESSAGE:
        if fragment.lower() in message.lower():
            return kind
    return FailureKind.TRANSIENT


class RecoveryStep(StrEnum):
    """What to do to the adapter after consecutive `InProgress` / `NotReady` answers."""

    WAIT = "wait"  # usually another scan or connect is finishing
    STOP_DISCOVERY = "stop_discovery"  # a discovery session left running (BlueZ issue 807)
    POWER_CYCLE = "power_cycle"  # Powered off and on clears bluetoothd's stuck state


# The ladder, one rung per consecutive adapter error; past its end the last rung repeats.
RECOVERY_LADDER = (
    RecoveryStep.WAIT,
    RecoveryStep.STOP_DISCOVERY,
    RecoveryStep.POWER_CYCLE,
)
POWER_CYCLE_WARNING_AFTER = 5  # from then on, tell the operator to restart bluetoothd


def adapter_recovery_step(consecutive_errors: int) -> RecoveryStep:
    """The rung of the recovery ladder for the `consecutive_errors`-th adapter error in a row."""
    if consecutive_errors < 1:
        raise ValueError("the ladder starts at the first error")
    return RECOVERY_LADDER[min(consecutive_errors, len(RECOVERY_LADDER)) - 1]
