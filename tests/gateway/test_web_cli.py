"""`pulsegate web hash-pin`, `pulsegate patients name`, and the demo's status page settings."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import parse_config
from gateway.display_names import display_names
from gateway.store import Store
from gateway.web.secret_hash import hash_secret, verify_secret
from gateway.web_cli import demo_web
from tests.conftest import free_port


def test_hash_pin_prints_a_config_line_that_verifies(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["web", "hash-pin"], input="2468\n2468\n")
    assert result.exit_code == 0, result.output
    match = re.search(r'pin_hash = "(scrypt\$[^"]+)"', result.output)
    assert match is not None
    assert verify_secret("2468", match.group(1)) and not verify_secret("2469", match.group(1))
    assert "2468\n" not in result.output.split("pin_hash")[1]  # the PIN itself is not echoed
    config = parse_config({"web": {"listen": "127.0.0.1:8080", "pin_hash": match.group(1)}})
    assert config.web.pin_hash == match.group(1)


def test_hash_pin_refuses_a_short_pin() -> None:
    result = CliRunner().invoke(main, ["web", "hash-pin", "--pin", "12"])
    assert result.exit_code == 2
    assert "error: a PIN is 4-64 printable characters" in result.output


def test_patients_name_sets_and_clears_a_local_display_name(tmp_path: Path) -> None:
    config = tmp_path / "pulsegate.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n')
    runner = CliRunner()
    base = ["--config", str(config)]
    assert runner.invoke(main, [*base, "patients", "add", "p-1", "--tier", "red"]).exit_code == 0
    named = runner.invoke(main, [*base, "patients", "name", "p-1", "李大爷"])
    assert named.exit_code == 0 and "p-1 is shown as 李大爷" in named.output
    store = Store.open(tmp_path / "data" / "pulsegate.db", "gw")
    assert display_names(store) == {"p-1": "李大爷"}
    store.close()
    unknown = runner.invoke(main, [*base, "patients", "name", "p-2", "x"])
    assert unknown.exit_code == 1 and "no patient 'p-2'" in unknown.output
    both = runner.invoke(main, [*base, "patients", "name", "p-1", "x", "--clear"])
    assert both.exit_code == 2
    cleared = runner.invoke(main, [*base, "patients", "name", "p-1", "--clear"])
    assert cleared.exit_code == 0 and "display name removed" in cleared.output


def test_demo_turns_the_page_on_with_a_fresh_pin_unless_configured() -> None:
    config, pin = demo_web(parse_config({}))
    assert pin is not None and len(pin) == 6 and pin.isdigit()
    assert config.web.listen == "127.0.0.1:8080" and verify_secret(pin, config.web.pin_hash)
    own = parse_config({"web": {"listen": "0.0.0.0:9000"}})
    assert demo_web(own) == (own, None)


PULSEGATE = (sys.executable, "-m", "gateway")


def _page_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "pulsegate.toml"
    config.write_text(
        f'[gateway]\nid = "gw-page"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[web]\nlisten = "127.0.0.1:{port}"\npin_hash = "{hash_secret("2468")}"\n'
    )
    return config


def _demo(config: Path, duration_s: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PULSEGATE, "--config", str(config), "run", "--simulate", "--duration", duration_s],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_the_demo_prints_the_page_address_once_the_page_answers(tmp_path: Path) -> None:
    port = free_port()
    daemon = _demo(_page_config(tmp_path, port), "60")
    try:
        assert daemon.stdout is not None
        for line in daemon.stdout:
            if line.startswith("status page:"):
                break
        else:
            pytest.fail(
                f"no status page line; stderr: {daemon.stderr.read() if daemon.stderr else ''}"
            )
        assert line.strip() == f"status page: http://127.0.0.1:{port}/"
        # The moment the address is printed, the page answers.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
    assert daemon.returncode == 0


def test_a_taken_port_is_reported_and_the_demo_runs_on_without_its_page(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        daemon = _demo(_page_config(tmp_path, port), "3")
        out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "status page: http" not in out
    assert f"status page: cannot listen on 127.0.0.1:{port}" in err
    assert "readings stored:" in out
