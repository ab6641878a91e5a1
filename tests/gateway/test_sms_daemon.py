"""The daemon as a real process, with [sms] on and a simulated modem on a pty: the simulated
desaturation's alerts reach the family and the village doctor at once, and the township doctor
once they have gone unacknowledged for the red tier's 5 minutes (at 20x simulated time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from tests.gateway.modem_sim import PtyModem

PATIENT = "demo-desaturation"
FAMILY, DOCTOR, TOWNSHIP = "13800000001", "13900000002", "13700000003"


def test_the_daemon_escalates_the_desaturation_by_sms_through_the_pty_modem(
    tmp_path: Path,
) -> None:
    link = tmp_path / "ttyUSB2"
    config = tmp_path / "pulsegate.toml"
    config.write_text(
        f'[gateway]\nid = "gw-sms"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[sms]\nenabled = true\nport = "{link}"\nmin_interval_s = 0.5\n'
    )
    cli = CliRunner()
    for args in (
        ["patients", "add", PATIENT, "--tier", "red"],
        ["contacts", "add", PATIENT, "--role", "family", "--name", "Li", "--phone", FAMILY],
        ["contacts", "add", PATIENT, "--role", "doctor", "--name", "Wang", "--phone", DOCTOR],
        ["contacts", "add", PATIENT, "--role", "township", "--name", "Zhao", "--phone", TOWNSHIP,
         "--language", "en"],
    ):  # fmt: skip
        result = cli.invoke(main, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
    with PtyModem(link) as sim:
        daemon = subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(config), "run", "--simulate",
             "--speed", "20", "--duration", "40", "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=180,
            check=False,
        )  # fmt: skip
    assert daemon.returncode == 0, daemon.stderr[-2000:]
    sent = [(m.number, m.text) for m in sim.messages]
    assert len(sent) >= 4, (sent, daemon.stderr[-2000:])
    # The first alert (S2, SpO2 low) goes to the family and the village doctor, in Chinese.
    assert [number for number, _ in sent[:2]] == [FAMILY, DOCTOR]
    assert all("血氧" in text and "demo-desaturation" in text for _, text in sent[:2])
    # Unacknowledged for 5 simulated minutes: the doctor again, then the township, in English.
    township = [i for i, (number, _) in enumerate(sent) if number == TOWNSHIP]
    assert township, sent
    first = township[0]
    assert sent[first - 1][0] == DOCTOR
    assert "Not acknowledged for" in sent[first - 1][1] or "无人确认" in sent[first - 1][1]
    assert sent[first][1].startswith("pulsegate URGENT: demo-desaturation - SpO2")
    assert "Not acknowledged for" in sent[first][1]
    # Every attempt is recorded with its alert, numbers masked, and shown by `notifications`.
    for phone in (FAMILY, DOCTOR, TOWNSHIP):
        assert phone not in daemon.stderr
        assert phone[-4:] in daemon.stderr
    listed = cli.invoke(main, ["--config", str(config), "alerts", "--json"])
    alerts = [json.loads(line) for line in listed.output.splitlines()]
    [s2] = [a for a in alerts if (a["patient_id"], a["rule"]) == (PATIENT, "S2")]
    history = cli.invoke(main, ["--config", str(config), "notifications", s2["id"][:8]])
    assert history.exit_code == 0, history.output
    lines = history.output.splitlines()
    assert "level 1 try 1  family    138****0001" in lines[0]
    assert "level 1 try 1  doctor    139****0002" in lines[1]
    assert "level 2 try 1  doctor    139****0002" in lines[2]
    assert "level 2 try 1  township  137****0003" in lines[3]
    assert all("sent, reference" in line for line in lines)
    assert all(phone not in history.output for phone in (FAMILY, DOCTOR, TOWNSHIP))
