"""The command line: every command has --help, bad configuration is a clear error with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import load_config, parse_config


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", [(), *_commands(main)], ids=lambda p: " ".join(p) or "main")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert len(result.output.splitlines()) >= 3


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[mqtt]\nport = "1883"\n', "error: mqtt.port: expected an integer"),
        ("[mqtt]\nport = 70000\n", "error: mqtt.port: 70000 is outside 1..65535"),
        ("[mqtt]\nhostname = 'x'\n", "error: mqtt.hostname: unknown key"),
        ("[gateway]\nid = 'has space'\n", "error: gateway.id: 'has space' must be"),
        ("[gateway]\nlog_level = 'loud'\n", "error: gateway.log_level: expected one of"),
        ("[store]\nbatch_interval_s = true\n", "error: store.batch_interval_s: expected a number"),
        (
            "[store]\nsummary_retention_days = 3\n",
            "error: store.summary_retention_days: must be 0 (keep summaries) or at least"
            " store.retention_days (7)",
        ),
        ("mqtt = 3\n", "error: mqtt: expected a table"),
        ("[mqtt]\ntopic_prefix = 'a/#'\n", "error: mqtt.topic_prefix: 'a/#' is not a usable"),
        ("[surprise]\n", "error: surprise: unknown key"),
        ("[mqtt\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error_with_exit_2(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    result = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "status"])
    assert result.exit_code == 2
    assert "nope.toml: no such file" in result.output


def test_config_error_from_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[mqtt]\nport = "x"\n')
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: mqtt.port: expected an integer, got 'x'"


def test_patients_add_list_and_duplicate(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n')
    runner = CliRunner()
    added = runner.invoke(
        main,
        ["--config", str(config), "patients", "add", "p-001", "--tier", "red", "--profile", "copd"],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["--config", str(config), "patients", "list"])
    assert "p-001" in listed.output and "red" in listed.output and "copd" in listed.output
    again = runner.invoke(
        main, ["--config", str(config), "patients", "add", "p-001", "--tier", "green"]
    )
    assert again.exit_code == 1
    assert "error: patient 'p-001' already exists" in again.output
    bad_tier = runner.invoke(
        main, ["--config", str(config), "patients", "add", "p-2", "--tier", "blue"]
    )
    assert bad_tier.exit_code == 2


@pytest.mark.parametrize(
    ("patient_id", "message"),
    [
        ("王奶奶", "a patient id is 1-64 letters, digits"),  # a name
        ("Li Wei", "a patient id is 1-64 letters, digits"),
        ("p/1", "a patient id is 1-64 letters, digits"),  # a topic separator
        ("p+#", "a patient id is 1-64 letters, digits"),  # MQTT wildcards
        ("_p1", "a patient id is 1-64 letters, digits"),
        ("x" * 65, "a patient id is 1-64 letters, digits"),
        ("13812345678", "looks like a phone or ID number"),
        ("p-1381234567", "looks like a phone or ID number"),
    ],
)
def test_a_patient_id_must_be_a_pseudonym(tmp_path: Path, patient_id: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(
        main, ["--config", str(config), "patients", "add", patient_id, "--tier", "red"]
    )
    assert result.exit_code == 2
    assert message in result.output
    listed = CliRunner().invoke(main, ["--config", str(config), "patients", "list"])
    assert "no patients" in listed.output


def test_ack_of_unknown_alert_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "ack", "abcdef12"])
    assert result.exit_code == 1
    assert "no alert 'abcdef12'" in result.output


def test_the_commented_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "systemd" / "pulsegate.toml"
    result = CliRunner().invoke(main, ["--config", str(example), "--help"])
    assert result.exit_code == 0, result.output
    config = load_config(example)
    assert config.mqtt.enabled is False
    assert config.store.batch_interval_s == 3.0
    assert config.store.summary_retention_days == parse_config({}).store.summary_retention_days
