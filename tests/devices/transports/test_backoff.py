"""The retry policy as tables: failure classes, delays, jitter bounds and the adapter ladder."""

from __future__ import annotations

import pytest

from devices.backoff import (
    JITTER_FRACTION,
    POLICIES,
    FailureKind,
    RecoveryStep,
    adapter_recovery_step,
    backoff_delay_s,
    classify_ble_error,
)


@pytest.mark.parametrize(
    ("kind", "attempt", "jitter", "expected_s"),
    [
        (FailureKind.LINK_LOST, 1, 0.0, 0.5),  # reconnect almost at once
        (FailureKind.LINK_LOST, 2, 0.0, 1.0),
        (FailureKind.LINK_LOST, 7, 0.0, 30.0),  # 32 s capped at 30
        (FailureKind.TRANSIENT, 1, 0.0, 1.0),
        (FailureKind.TRANSIENT, 3, 0.0, 4.0),
        (FailureKind.TRANSIENT, 3, 1.0, 4.8),  # +20 %
        (FailureKind.TRANSIENT, 3, -1.0, 3.2),  # -20 %
        (FailureKind.NOT_FOUND, 1, 0.0, 5.0),  # switched off: look again less often
        (FailureKind.NOT_FOUND, 3, 0.0, 11.25),
        (FailureKind.NOT_FOUND, 50, 0.0, 120.0),
        (FailureKind.ADAPTER_BUSY, 1, 0.0, 2.0),
        (FailureKind.ADAPTER_NOT_READY, 2, 0.0, 10.0),
        (FailureKind.MISMATCH, 1, 0.0, 60.0),  # wrong protocol: a person must act
        (FailureKind.PORT_MISSING, 2, 0.0, 1.5),
        (FailureKind.PORT_ERROR, 1, 0.0, 0.5),
        (FailureKind.SILENT, 10_000, 0.0, 60.0),  # weeks of failures do not overflow
    ],
)
def test_backoff_delay_table(
    kind: FailureKind, attempt: int, jitter: float, expected_s: float
) -> None:
    assert backoff_delay_s(kind, attempt, jitter) == pytest.approx(expected_s)


def test_every_failure_kind_has_a_policy_that_grows_to_its_cap() -> None:
    for kind in FailureKind:
        delays = [backoff_delay_s(kind, attempt, 0.0) for attempt in range(1, 40)]
        assert delays == sorted(delays)
        assert delays[-1] == POLICIES[kind].max_s


def test_scale_shrinks_every_delay() -> None:
    assert backoff_delay_s(FailureKind.TRANSIENT, 2, 0.5, scale=0.1) == pytest.approx(
        0.1 * 2.0 * (1 + JITTER_FRACTION * 0.5)
    )


@pytest.mark.parametrize(("attempt", "jitter"), [(0, 0.0), (1, 1.5), (1, -1.01)])
def test_out_of_range_arguments_are_refused(attempt: int, jitter: float) -> None:
    with pytest.raises(ValueError):
        backoff_delay_s(FailureKind.TRANSIENT, attempt, jitter)


@pytest.mark.parametrize(
    ("dbus_error", "message", "kind"),
    [
        ("org.bluez.Error.InProgress", "Operation already in progress", FailureKind.ADAPTER_BUSY),
        ("org.bluez.Error.NotReady", "Resource Not Ready", FailureKind.ADAPTER_NOT_READY),
        (
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "The name org.bluez was not provided by any .service files",
            FailureKind.ADAPTER_NOT_READY,
        ),
        (
            "org.freedesktop.DBus.Error.UnknownObject",
            "Method Connect with signature  on interface org.bluez.Device1 doesn't exist",
            FailureKind.NOT_FOUND,
        ),
        ("org.bluez.Error.Failed", "le-connection-abort-by-local", FailureKind.TRANSIENT),
        ("org.bluez.Error.Failed", "Software caused connection abort", FailureKind.TRANSIENT),
        # bleak-retry-connector wraps the D-Bus error; its text still carries the name.
        (
            None,
            "dev - C0:11: Failed to connect after 2 attempt(s): "
            "[org.bluez.Error.InProgress] Operation already in progress",
            FailureKind.ADAPTER_BUSY,
        ),
        (
            None,
            "No powered Bluetooth adapters found. Turn on Bluetooth and try again.",
            FailureKind.ADAPTER_NOT_READY,
        ),
        (None, "Device with address C0:11:22:33:44:01 was not found.", FailureKind.NOT_FOUND),
        (None, "TimeoutError", FailureKind.TRANSIENT),
    ],
)
def test_ble_errors_are_classified(dbus_error: str | None, message: str, kind: FailureKind) -> None:
    assert classify_ble_error(dbus_error, message) is kind


@pytest.mark.parametrize(
    ("consecutive", "step"),
    [
        (1, RecoveryStep.WAIT),
        (2, RecoveryStep.STOP_DISCOVERY),
        (3, RecoveryStep.POWER_CYCLE),
        (4, RecoveryStep.POWER_CYCLE),
        (40, RecoveryStep.POWER_CYCLE),
    ],
)
def test_adapter_recovery_ladder(consecutive: int, step: RecoveryStep) -> None:
    assert adapter_recovery_step(consecutive) is step


def test_the_ladder_starts_at_one() -> None:
    with pytest.raises(ValueError):
        adapter_recovery_step(0)
