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

from devices.protocols.catalog import UnknownProtocolError, get_protocol
from devices.serial_port import SerialPortSpec
from gateway.web.secret_hash import HashFormatError, parse_hash
from sync.broker_security import CONFIG_LABELS, BrokerSecurity, SecurityError, load_security

DEFAULT_CONFIG_PATH = Path("/etc/pulsegate/pulsegate.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
WEB_LANGUAGES = ("zh", "en")
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
    batch_interval_s: float = 3.0
    min_commit_readings: int = 90  # a batch with fewer waits for more (alerts never wait) ...
    max_commit_delay_s: float = 30.0  # ... for at most this long
    retention_days: float = 7.0  # raw readings; older ones become per-minute summaries
    max_database_mb: float = 4000.0  # above it the oldest raw readings go first; 0: no limit
    summary_retention_days: float = 365.0  # per-minute summaries; 0: kept for good


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Where alerts go. `host` empty means no broker: alerts stay in the local outbox."""

    host: str = ""
    port: int = 1883
    topic_prefix: str = "pulsegate"
    keepalive_s: int = 30
    client_id: str = ""
    max_inflight: int = 20
    daily_budget_kb: int = 0  # summaries and raw data wait once a day's bytes reach it; 0: none
    tls_ca_file: Path | None = None  # TLS on when set
    tls_cert_file: Path | None = None  # client certificate (optional)
    tls_key_file: Path | None = None
    username: str = ""
    password_file: Path | None = None  # read at start by security(), never kept here

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def security(self) -> BrokerSecurity:
        """The TLS context and credentials, read from their files now (ConfigError naming
        the key if one cannot be used)."""
        try:
            return load_security(
                ca_file=self.tls_ca_file,
                cert_file=self.tls_cert_file,
                key_file=self.tls_key_file,
                username=self.username,
                password_file=self.password_file,
                labels=CONFIG_LABELS,
            )
        except SecurityError as exc:
            raise ConfigError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    lag_s: float = 3.0
    utc_offset_h: float = 8.0  # local time of the day- and night-level rules (China: +8)

    @property
    def utc_offset_s(self) -> int:
        return round(self.utc_offset_h * 3600)


@dataclass(frozen=True, slots=True)
class BleConfig:
    """The Bluetooth adapter and how patiently links to bound BLE devices are kept."""

    adapter: str = "hci0"
    scan_timeout_s: float = 10.0
    silence_timeout_s: float = 15.0


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The local status page. `listen` empty: no page (the default). `language` None: the
    browser's Accept-Language decides (zh when it names neither zh nor en)."""

    listen: str = ""  # "HOST:PORT", e.g. "0.0.0.0:8080" for the LAN
    pin_hash: str = ""  # from `pulsegate web hash-pin`; empty: the page cannot acknowledge
    language: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.listen)

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class SmsConfig:
    """A USB GSM modem for SMS escalation (alerts/escalation.py); off unless enabled."""

    enabled: bool = False
    port: str = "/dev/ttyUSB2"  # the modem's AT port (a by-id link is steadier)
    baudrate: int = 115200
    min_interval_s: float = 5.0  # between two SMS
    max_per_hour: int = 30
    send_timeout_s: float = 60.0  # +CMGS on a slow network takes 30-60 s


@dataclass(frozen=True, slots=True)
class Config:
    gateway: GatewayConfig
    store: StoreConfig = field(default_factory=StoreConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    source: Path | None = None
    ble: BleConfig = field(default_factory=BleConfig)
    serial: tuple[SerialPortSpec, ...] = ()
    web: WebConfig = field(default_factory=WebConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)

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
        batch_interval_s=store.number("batch_interval_s", 3.0, minimum=0.05, maximum=60.0),
        min_commit_readings=store.integer("min_commit_readings", 90, minimum=1, maximum=100_000),
        max_commit_delay_s=store.number("max_commit_delay_s", 30.0, minimum=0.0, maximum=300.0),
        retention_days=store.number("retention_days", 7.0, minimum=1, maximum=3650),
        max_database_mb=store.number("max_database_mb", 4000.0, minimum=0, maximum=10**7),
        summary_retention_days=store.number(
            "summary_retention_days", 365.0, minimum=0, maximum=36_500
        ),
    )
    if 0 < store_config.summary_retention_days < store_config.retention_days:
        raise ConfigError(
            f"{store.key('summary_retention_days')}: must be 0 (keep summaries) or at least"
            f" store.retention_days ({store_config.retention_days:g})"
        )
    mqtt = sections.section("mqtt")
    mqtt_config = MqttConfig(
        host=mqtt.string("host", ""),
        port=mqtt.integer("port", 1883, minimum=1, maximum=65535),
        topic_prefix=mqtt.topic("topic_prefix", "pulsegate"),
        keepalive_s=mqtt.integer("keepalive_s", 30, minimum=5, maximum=3600),
        client_id=mqtt.string("client_id", ""),
        max_inflight=mqtt.integer("max_inflight", 20, minimum=1, maximum=1000),
        daily_budget_kb=mqtt.integer("daily_budget_kb", 0, minimum=0, maximum=10**7),
        tls_ca_file=mqtt.path("tls_ca_file"),
        tls_cert_file=mqtt.path("tls_cert_file"),
        tls_key_file=mqtt.path("tls_key_file"),
        username=mqtt.string("username", ""),
        password_file=mqtt.path("password_file"),
    )
    detector = sections.section("detector")
    detector_config = DetectorConfig(
        lag_s=detector.number("lag_s", 3.0, minimum=0, maximum=60),
        utc_offset_h=detector.number("utc_offset_h", 8.0, minimum=-14, maximum=14),
    )
    ble = sections.section("ble")
    ble_config = BleConfig(
        adapter=ble.identifier("adapter", "hci0"),
        scan_timeout_s=ble.number("scan_timeout_s", 10.0, minimum=1, maximum=120),
        silence_timeout_s=ble.number("silence_timeout_s", 15.0, minimum=1, maximum=600),
    )
    serial = _serial_devices(sections)
    web = _web_config(sections.section("web"))
    sms = _sms_config(sections.section("sms"))
    for part in (gateway, store, mqtt, detector, ble, sections):
        part.reject_unknown()
    return Config(
        gateway_config,
        store_config,
        mqtt_config,
        detector_config,
        source,
        ble=ble_config,
        serial=serial,
        web=web,
        sms=sms,
    )


def _web_config(web: _Section) -> WebConfig:
    """`[web]`: listen = "HOST:PORT" (empty: off), pin_hash, language = "zh" | "en"."""
    listen = web.string("listen", "").strip()
    if listen:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"{web.key('listen')}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    pin_hash = web.string("pin_hash", "").strip()
    if pin_hash:
        try:
            parse_hash(pin_hash)
        except HashFormatError as exc:
            raise ConfigError(f"{web.key('pin_hash')}: {exc}") from None
    language = web.string("language", "") or None
    if language is not None and language not in WEB_LANGUAGES:
        raise ConfigError(f"{web.key('language')}: expected one of {', '.join(WEB_LANGUAGES)}")
    web.reject_unknown()
    return WebConfig(listen, pin_hash, language)


def _sms_config(sms: _Section) -> SmsConfig:
    """`[sms]`: enabled, port, baudrate, min_interval_s, max_per_hour, send_timeout_s."""
    enabled = sms.boolean("enabled", False)
    config = SmsConfig(
        enabled=enabled,
        port=sms.string("port", "/dev/ttyUSB2"),
        baudrate=sms.integer("baudrate", 115200, minimum=1200, maximum=4_000_000),
        min_interval_s=sms.number("min_interval_s", 5.0, minimum=0, maximum=3600),
        max_per_hour=sms.integer("max_per_hour", 30, minimum=1, maximum=3600),
        send_timeout_s=sms.number("send_timeout_s", 60.0, minimum=5, maximum=600),
    )
    if enabled and not config.port:
        raise ConfigError(f"{sms.key('port')}: give the modem's serial port, e.g. /dev/ttyUSB2")
    sms.reject_unknown()
    return config


_USB_ID = re.compile(r"^([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})$")


def _serial_devices(sections: _Section) -> tuple[SerialPortSpec, ...]:
    """The `[[serial]]` tables: one serial device each (id, protocol, port and/or usb)."""
    devices: list[SerialPortSpec] = []
    for table in sections.tables("serial"):
        device_id = table.identifier("id", "")
        protocol = table.string("protocol", "")
        try:
            spec = get_protocol(protocol)
        except UnknownProtocolError as exc:
            raise ConfigError(f"{table.key('protocol')}: {exc}") from None
        if spec.serial is None:
            raise ConfigError(f"{table.key('protocol')}: {protocol} is not a serial protocol")
        port = table.string("port", "") or None
        usb = table.string("usb", "")
        vid = pid = None
        if usb:
            match = _USB_ID.match(usb)
            if match is None:
                raise ConfigError(f"{table.key('usb')}: expected VID:PID in hex, e.g. 067b:2303")
            vid, pid = int(match[1], 16), int(match[2], 16)
        serial_number = table.string("serial_number", "") or None
        if port is None and vid is None and serial_number is None:
            raise ConfigError(f"{table.key('port')}: give port, usb or serial_number")
        baudrate = table.integer("baudrate", 0, minimum=0, maximum=4_000_000) or None
        table.reject_unknown()
        if any(d.device_id == device_id for d in devices):
            raise ConfigError(f"{table.key('id')}: {device_id!r} is used twice")
        devices.append(SerialPortSpec(device_id, protocol, port, vid, pid, serial_number, baudrate))
    return tuple(devices)


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

    def key(self, key: str) -> str:
        return self._key(key)

    def tables(self, key: str) -> list[_Section]:
        """An array of tables (`[[key]]`), each as a section named `key[i]`."""
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise ConfigError(f"{self._key(key)}: expected tables ([[{self._key(key)}]])")
        return [_Section(f"{self._key(key)}[{i}]", table) for i, table in enumerate(value)]

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

    def path(self, key: str) -> Path | None:
        """An optional file path; an empty string means none."""
        value = self.string(key, "")
        return Path(value) if value else None

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(key)}: expected true or false, got {value!r}")
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
