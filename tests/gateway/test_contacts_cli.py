"""`pulsegate contacts` and `pulsegate notifications`, and the [sms] configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from alerts.engine import RuleEvent, Transition
from alerts.escalation import Language, Notification, Outcome, Role
from alerts.lifecycle import Alert, AlertEventKind
from alerts.rules import Priority, Profile, RuleId, Tier
from gateway.cli import main
from gateway.config import SmsConfig, load_config, parse_config
from gateway.contacts import add_contact, finish_attempt, start_attempt
from gateway.migrations import MIGRATIONS
from gateway.store import Patient, Store
from sync.payload import OutboxMessage, alert_event_message

PHONE = "13812345678"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pulsegate.toml"
    path.write_text(f'[gateway]\nid = "gw1"\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_contacts_are_added_listed_and_removed_with_masked_numbers(config: Path) -> None:
    assert run(config, "patients", "add", "p-1", "--tier", "red").exit_code == 0
    added = run(
        config, "contacts", "add", "p-1", "--role", "family", "--name", "Li Na",
        "--phone", "138 1234 5678",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added contact 1: family Li Na 138****5678 (zh) for p-1" in added.output
    doctor = run(
        config, "contacts", "add", "p-1", "--role", "doctor", "--name", "Dr Wang",
        "--phone", "+8613900000002", "--language", "en",
    )  # fmt: skip
    assert doctor.exit_code == 0, doctor.output
    listed = run(config, "contacts", "list")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert "family" in lines[0] and "138****5678" in lines[0]
    assert "doctor" in lines[1] and "+86139****0002" in lines[1]
    as_json = [
        json.loads(line)
        for line in run(config, "contacts", "list", "--json").output.split("\n")
        if line
    ]
    assert [row["phone"] for row in as_json] == ["138****5678", "+86139****0002"]
    for output in (added.output, doctor.output, listed.output):
        assert PHONE not in output and "13900000002" not in output
    removed = run(config, "contacts", "remove", "1")
    assert removed.exit_code == 0
    assert "removed contact 1 (family of p-1)" in removed.output
    assert "138****5678" not in run(config, "contacts", "list", "p-1").output


@pytest.mark.parametrize(
    ("patient", "name", "phone", "twice", "code", "message"),
    [
        ("p-1", "Li Na", "12", False, 2, "error: 12: a phone number is 5-20 digits"),
        ("p-1", "Li Na", "138123456789012345678", False, 2, "error: 138**************5678: a"),
        ("p-1", " ", PHONE, False, 1, "error: a contact's name is 1-64"),
        ("nobody", "Li Na", PHONE, False, 1, "error: no patient 'nobody'"),
        ("p-1", "Li Na", PHONE, True, 1, "error: p-1 already has 138****5678 as a family"),
    ],
)
def test_bad_contacts_are_refused_with_one_line(
    config: Path, patient: str, name: str, phone: str, twice: bool, code: int, message: str
) -> None:
    run(config, "patients", "add", "p-1", "--tier", "red")
    command = ["contacts", "add", patient, "--role", "family", "--name", name, "--phone", phone]
    if twice:
        run(config, *command)
    result = run(config, *command)
    assert result.exit_code == code
    assert result.output.startswith(message)
    assert len(result.output.splitlines()) == 1


def message(alert: Alert, kind: AlertEventKind, ts_s: float) -> OutboxMessage:
    return alert_event_message("pg", "site", alert, kind, ts_s)


def test_notifications_show_every_attempt_of_an_alert(config: Path) -> None:
    store = Store.open(load_config(config).database_path, "gw1")
    patient = Patient("p-1", Tier.RED, Profile.DEFAULT)
    store.add_patient(patient, 0.0)
    contact = add_contact(store, "p-1", Role.FAMILY, "Li Na", PHONE, Language.ZH, 0.0)
    event = RuleEvent(RuleId.S1, Transition.ONSET, 1000, Priority.HIGH, True, {})
    [(alert, _)] = store.write_batch([], [(patient, event)], {}, message, 1000.0)
    first = Notification(alert.id, contact, Priority.HIGH, 0, 1, 0.0)
    failed = start_attempt(store, first, 1001.0)
    finish_attempt(store, failed, Outcome.FAILED, 1002.0, None, "+CMS ERROR 331: no network")
    sent = start_attempt(store, Notification(alert.id, contact, Priority.HIGH, 0, 2, 11.0), 1011.0)
    finish_attempt(store, sent, Outcome.SENT, 1012.0, 12)
    store.close()
    result = run(config, "notifications", alert.id[:8])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert "HIGH   level 1 try 1  family    138****5678" in lines[0]
    assert lines[0].endswith("failed: +CMS ERROR 331: no network")
    assert lines[1].endswith("sent, reference 12")
    assert PHONE not in result.output
    assert run(config, "notifications", "abc").exit_code == 2
    missing = run(config, "notifications", "ffffffff")
    assert missing.exit_code == 1
    assert "error: no alert 'ffffffff'" in missing.output


def test_the_migration_adds_both_tables_once(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "a.db", "gw")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert {"contacts", "notification_attempts"} <= set(store.db.table_names())
    store.close()
    Store.open(tmp_path / "a.db", "gw").close()  # reopening migrates nothing again


def test_sms_is_off_by_default_and_configured_in_its_table(tmp_path: Path) -> None:
    assert parse_config({}).sms == SmsConfig()
    assert SmsConfig().enabled is False
    path = tmp_path / "c.toml"
    path.write_text(
        '[sms]\nenabled = true\nport = "/dev/serial/by-id/usb-Quectel_EC25-if02"\n'
        "baudrate = 9600\nmin_interval_s = 10\nmax_per_hour = 20\nsend_timeout_s = 90\n"
    )
    sms = load_config(path).sms
    assert sms == SmsConfig(True, "/dev/serial/by-id/usb-Quectel_EC25-if02", 9600, 10, 20, 90)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[sms]\nenabled = "yes"\n', "error: sms.enabled: expected true or false"),
        ("[sms]\nmax_per_hour = 0\n", "error: sms.max_per_hour: 0 is outside 1..3600"),
        ("[sms]\nspeed = 1\n", "error: sms.speed: unknown key"),
        ('[sms]\nenabled = true\nport = ""\n', "error: sms.port: give the modem's serial port"),
    ],
)
def test_bad_sms_config_is_a_clear_error(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    result = CliRunner().invoke(main, ["--config", str(path), "status"])
    assert result.exit_code == 2
    assert message in result.output
