"""pulsegate's configuration: one TOML file parsed once into frozen dataclasses.

Without a file, the embedded defaults need nothing: data in a local directory, no broker.
Every error names the key path (`mqtt.port: expected an integer`); see systemd/pulsegate.toml
for a commented example of every key.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/pulsegate/pulsegate.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message starts with the key path."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    id: str
    site: str
    data_dir: Path
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    batch_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Where alerts go. `host` empty means no broker: alerts stay in the local outbox."""

    host: str = ""
    port: int = 1883
    topic_prefix: str = "pulsegate"
    keepalive_s: int = 30
    client_id: str = ""
    max_inflight: int = 20

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    lag_s: float = 3.0


@dataclass(frozen=True, slots=True)
class Config:
    gateway: GatewayConfig
    store: StoreConfig = field(default_factory=StoreConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    source: Path | None = None

    @property
    def database_path(self) -> Path:
        return self.gateway.data_dir / "pulsegate.db"


def default_data_dir() -> Path:
    """systemd's StateDirectory when run as a service, else ./pulsegate-data."""
    state_directory = os.environ.get("STATE_DIRECTORY")
    if state_directory:
        return Path(state_directory.split(":")[0])
    return Path("pulsegate-data")


def load_config(path: Path | None = None) -> Config:
    """Read `path`, or /etc/pulsegate/pulsegate.toml when it exists, or the embedded defaults."""
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is None:
        return parse_config({})
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(document, source=path)


def parse_config(document: dict[str, Any], source: Path | None = None) -> Config:
    """Build a Config from a parsed TOML document; unknown keys are errors, not ignored."""
    sections = _Section("", document)
    gateway = sections.section("gateway")
    gateway_config = GatewayConfig(
        id=gateway.identifier("id", socket.gethostname().split(".")[0] or "pulsegate"),
        site=gateway.identifier("site", "default"),
        data_dir=Path(gateway.string("data_dir", str(default_data_dir()))),
        log_level=gateway.choice("log_level", "info", LOG_LEVELS),
    )
    store = sections.section("store")
    store_config = StoreConfig(
        batch_interval_s=store.number("batch_interval_s", 1.0, minimum=0.05, maximum=60.0)
    )
    mqtt = sections.section("mqtt")
    mqtt_config = MqttConfig(
        host=mqtt.string("host", ""),
        port=mqtt.integer("port", 1883, minimum=1, maximum=65535),
        topic_prefix=mqtt.topic("topic_prefix", "pulsegate"),
        keepalive_s=mqtt.integer("keepalive_s", 30, minimum=5, maximum=3600),
        client_id=mqtt.string("client_id", ""),
        max_inflight=mqtt.integer("max_inflight", 20, minimum=1, maximum=1000),
    )
    detector = sections.section("detector")
    detector_config = DetectorConfig(lag_s=detector.number("lag_s", 3.0, minimum=0, maximum=60))
    for part in (gateway, store, mqtt, detector, sections):
        part.reject_unknown()
    return Config(gateway_config, store_config, mqtt_config, detector_config, source)


class _Section:
    """Typed access to one TOML table that remembers which keys were read."""

    def __init__(self, path: str, table: dict[str, Any]) -> None:
        self._path = path
        self._table = table
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _get(self, key: str) -> Any:
        self._seen.add(key)
        return self._table.get(key)

    def section(self, key: str) -> _Section:
        value = self._get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self._key(key)}: expected a table ([{self._key(key)}])")
        return _Section(self._key(key), value)

    def string(self, key: str, default: str) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self._key(key)}: expected a string, got {value!r}")
        return value

    def identifier(self, key: str, default: str) -> str:
        value = self.string(key, default)
        if not _ID_PATTERN.match(value):
            raise ConfigError(
                f"{self._key(key)}: {value!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        return value

    def topic(self, key: str, default: str) -> str:
        value = self.string(key, default).strip("/")
        if not value or any(c in value for c in "#+\0"):
            raise ConfigError(f"{self._key(key)}: {value!r} is not a usable MQTT topic prefix")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default).lower()
        if value not in choices:
            raise ConfigError(f"{self._key(key)}: expected one of {', '.join(choices)}")
        return value

    def integer(self, key: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._key(key)}: expected an integer, got {value!r}")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self._key(key)}: {value} is outside {minimum}..{maximum}")
        return value

    def number(self, key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._key(key)}: expected a number, got {value!r}")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self._key(key)}: {value} is outside {minimum}..{maximum}")
        return float(value)

    def reject_unknown(self) -> None:
        unknown = sorted(set(self._table) - self._seen)
        if unknown:
            raise ConfigError(f"{self._key(unknown[0])}: unknown key")
