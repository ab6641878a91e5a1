"""The gateway daemon as a real process for the MQTT tests: its config, a run to completion or
a process kept running in the background, and a look into its outbox."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

GATEWAY_ID = "gw-a"
SITE = "village-1"


def gateway_config(
    tmp_path: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    keepalive_s: int = 5,
    mqtt: str = "",
    gateway_id: str = GATEWAY_ID,
    site: str = SITE,
    tables: str = "",
) -> Path:
    """A config for gateway `gateway_id` (gw-a) on `site` (village-1), data in tmp_path/data;
    `mqtt` adds lines to its [mqtt] table, `tables` more tables after it."""
    config = tmp_path / "pulsegate.toml"
    config.write_text(
        f'[gateway]\nid = "{gateway_id}"\nsite = "{site}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nhost = "{host}"\nport = {port}\nkeepalive_s = {keepalive_s}\n{mqtt}{tables}'
    )
    return config


def daemon_argv(config: Path, *args: str) -> list[str]:
    """The argv of `python -m gateway --config CONFIG ARGS`."""
    return [sys.executable, "-m", "gateway", "--config", str(config), *args]


def start_simulated(
    config: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stderr: IO[bytes] | int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """`pulsegate run --simulate ARGS --quiet` in the background, its log to `stderr`
    (discarded by default); the caller stops it."""
    return subprocess.Popen(
        daemon_argv(config, "run", "--simulate", *args, "--quiet"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def run_daemon(
    config: Path, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """`pulsegate run ARGS` to completion."""
    return subprocess.run(
        daemon_argv(config, "run", *args),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass
class DaemonProcess:
    """`pulsegate run ARGS` in the background, stderr (its log) to a file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, config: Path, *args: str) -> DaemonProcess:
        log_path = config.parent / "daemon.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                daemon_argv(config, "--log-level", "info", "run", "--quiet", *args),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return cls(process, log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def outbox(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of a query on the gateway's database (WAL: readable while the daemon runs)."""
    with sqlite3.connect(data_dir / "pulsegate.db", timeout=10) as conn:
        return conn.execute(sql).fetchall()


def unsent_alert_ids(data_dir: Path) -> set[str]:
    return {
        str(row[0])
        for row in outbox(
            data_dir, "SELECT message_id FROM outbox WHERE sent_s IS NULL AND priority = 0"
        )
    }
