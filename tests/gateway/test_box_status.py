"""`pulsegate status` on the box itself: uptime while the daemon runs, disk use, clock trust
and the last acknowledged message."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from alerts.engine import RuleEvent, Transition
from alerts.rules import Priority, Profile, RuleId, Tier
from devices.protocols.reading import Quality
from gateway import box_status
from gateway.cli import main
from gateway.config import parse_config
from gateway.salvage import mark_corrupt
from gateway.store import Patient, ReadingRow, Store
from sync.payload import alert_event_message

NOW_S = 1_800_000_000.0


def test_status_shows_uptime_while_the_daemon_runs_and_not_after(tmp_path: Path) -> None:
    config = tmp_path / "pulsegate.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n')
    command = [sys.executable, "-m", "gateway", "--config", str(config), "run", "--simulate"]
    daemon = subprocess.Popen(
        [*command, "--speed", "20", "--quiet", "--duration", "6"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(4)
        running = CliRunner().invoke(main, ["--config", str(config), "status"])
        as_json = CliRunner().invoke(main, ["--config", str(config), "status", "--json"])
    finally:
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, stderr
    assert running.exit_code == 0, running.output
    assert "daemon: running, up 0 h 0 min" in running.output
    assert "disk: database" in running.output and "GB free of" in running.output
    assert "clock: " in running.output
    assert "last sync: never" in running.output
    assert "patients: 4" in running.output
    assert re.search(
        r"^uplink: backlog alert \d+, status \d+, summary \d+, raw \d+;", running.output, re.M
    )
    assert re.search(r"^open alerts: \d+$", running.output, re.M)
    report = json.loads(as_json.output)
    assert report["patients"] == 4 and len(report["bindings"]) == 8
    assert set(report["uplink"]["backlog"]) == {"alert", "status", "summary", "raw"}
    assert report["daemon"]["running"] is True and 0 < report["daemon"]["uptime_s"] < 30
    assert report["disk"]["database_used_bytes"] > 0
    assert report["disk"]["database_ceiling_bytes"] == 4_000_000_000

    stopped = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert "daemon: not running (last started" in stopped.output


def test_clock_trust_flagged_readings_and_last_sync(tmp_path: Path) -> None:
    config = parse_config({"gateway": {"data_dir": str(tmp_path)}})
    store = Store.open(config.database_path, "gw")
    patient = Patient("p-1", Tier.RED, Profile.DEFAULT)
    store.add_patient(patient, NOW_S)
    flagged = int(Quality.CLOCK_UNTRUSTED)
    rows = [ReadingRow(NOW_S - s, "p-1", "ox", "spo2_percent", 95.0, flagged) for s in range(5)]
    rows += [ReadingRow(NOW_S - 2 * 86_400, "p-1", "ox", "spo2_percent", 95.0, flagged)]
    event = RuleEvent(RuleId.S1, Transition.ONSET, int(NOW_S), Priority.HIGH, True, {})

    def message(alert, kind, ts_s):  # type: ignore[no-untyped-def]
        return alert_event_message("pg", "s", alert, kind, ts_s)

    store.write_batch(rows, [(patient, event)], {}, message, NOW_S)
    store.mark_sent([row.id for row in store.pending_messages(10)], NOW_S + 7)
    info = box_status.gather(store, config, now_s=NOW_S + 60)
    store.close()
    assert info["clock"]["untrusted_readings_last_day"] == 5  # not the one two days old
    assert info["sync"] == {"last_acknowledged_s": NOW_S + 7, "messages_acknowledged": 1}
    assert info["daemon"] == {"running": False, "started_s": None, "uptime_s": None}
    text = "\n".join(box_status.lines(info))
    assert "last sync: 2027-01-15 08:00:07 UTC (0 h 0 min ago)" in text
    assert "5 readings with an untrusted time in the last day" in text
    assert "uplink: backlog alert 0, status 0, summary 0, raw 0;" in text
    assert "DAMAGED" not in text
    toml = tmp_path / "pulsegate.toml"
    toml.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n')
    shown = CliRunner().invoke(main, ["--config", str(toml), "status"]).output
    assert "patients: 1" in shown
    assert re.search(r"^open alerts: 1\n  \w{8}  HIGH\s+S1  open\s+p-1 ", shown, re.M)


def test_status_shows_damage_the_background_check_found(tmp_path: Path) -> None:
    config = parse_config({"gateway": {"data_dir": str(tmp_path)}})
    Store.open(config.database_path, "gw").close()
    mark_corrupt(config.database_path, "database disk image is malformed")
    toml = tmp_path / "pulsegate.toml"
    toml.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n')
    shown = CliRunner().invoke(main, ["--config", str(toml), "status"]).output
    assert (
        "database: DAMAGED (database disk image is malformed); the next start checks it whole"
        " and salvages it" in shown
    )
