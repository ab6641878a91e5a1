"""`pulsegate web hash-pin`, `pulsegate patients name`, and the demo's status page settings."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.config import parse_config
from gateway.display_names import display_names
from gateway.store import Store
from gateway.web.secret_hash import verify_secret
from gateway.web_cli import demo_web, status_page_line


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
    assert status_page_line(config, pin) == (
        f"status page: http://127.0.0.1:8080/  (demo PIN for acknowledging: {pin})"
    )
    own = parse_config({"web": {"listen": "0.0.0.0:9000"}})
    assert demo_web(own) == (own, None)
    assert status_page_line(parse_config({}), None).startswith("status page: off")
