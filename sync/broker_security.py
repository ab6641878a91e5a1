"""TLS and credentials for the MQTT connection, shared by the gateway and the hub.

Everything is read and checked once, at start: the CA, the optional client certificate and
key become one `ssl.SSLContext`, and the password is read from its file (stripped). A file
that is missing, unreadable or not what it should be is a `SecurityError` whose message
starts with the name of the setting (`mqtt.password_file: ...` or `--password-file: ...`),
never with the secret. The password lives only in `BrokerSecurity.password`, which is left
out of `repr`, so it cannot reach a log line by accident.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import paho.mqtt.client as mqtt


class SecurityError(ValueError):
    """A TLS or credential setting that cannot be used; the message starts with its name."""


class SecurityLabels(NamedTuple):
    """How each setting is called where it was given (config key or command-line option)."""

    ca_file: str
    cert_file: str
    key_file: str
    username: str
    password_file: str


CONFIG_LABELS = SecurityLabels(
    "mqtt.tls_ca_file",
    "mqtt.tls_cert_file",
    "mqtt.tls_key_file",
    "mqtt.username",
    "mqtt.password_file",
)
CLI_LABELS = SecurityLabels(
    "--ca-file", "--cert-file", "--key-file", "--username", "--password-file"
)


@dataclass(frozen=True, slots=True, eq=False)
class BrokerSecurity:
    """How to talk to the broker: TLS (when `tls_context` is set) and MQTT credentials."""

    tls_context: ssl.SSLContext | None = None
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def tls(self) -> bool:
        return self.tls_context is not None

    def apply(self, client: mqtt.Client) -> None:
        """Configure `client` (before it connects)."""
        if self.tls_context is not None:
            client.tls_set_context(self.tls_context)
        if self.username:
            client.username_pw_set(self.username, self.password or None)


NO_SECURITY = BrokerSecurity()


def read_secret(path: Path, label: str) -> str:
    """The first line of a secret file, stripped; a SecurityError naming `label` if it is
    missing, unreadable or empty (the message names the file, never its content)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecurityError(f"{label}: {path}: no such file") from None
    except PermissionError:
        raise SecurityError(f"{label}: {path}: permission denied (who runs pulsegate?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SecurityError(f"{label}: {path}: cannot read ({reason})") from None
    lines = text.strip().splitlines()
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise SecurityError(f"{label}: {path} is empty")
    return secret


def _readable(path: Path, label: str) -> str:
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise SecurityError(f"{label}: {path}: no such file") from None
    except OSError as exc:
        raise SecurityError(f"{label}: {path}: cannot read ({exc.strerror})") from None
    return str(path)


def tls_context(
    ca_file: Path, cert_file: Path | None, key_file: Path | None, labels: SecurityLabels
) -> ssl.SSLContext:
    """A client TLS context that trusts `ca_file` only, checks the broker's host name and,
    with `cert_file` (and `key_file`, unless the key is in the certificate file), presents
    a client certificate."""
    if key_file is not None and cert_file is None:
        raise SecurityError(f"{labels.key_file}: needs {labels.cert_file} too")
    ca = _readable(ca_file, labels.ca_file)
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    except ssl.SSLError as exc:
        raise SecurityError(
            f"{labels.ca_file}: {ca_file}: not a PEM CA certificate ({exc.reason})"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        cert = _readable(cert_file, labels.cert_file)
        key = _readable(key_file, labels.key_file) if key_file is not None else None
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            label = labels.cert_file if key_file is None else labels.key_file
            raise SecurityError(
                f"{label}: the client certificate and key do not load ({exc.reason})"
            ) from None
    return context


def load_security(
    *,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    username: str,
    password_file: Path | None,
    labels: SecurityLabels,
) -> BrokerSecurity:
    """Read and check every TLS file and the password file; NO_SECURITY when none is set."""
    if ca_file is None and (cert_file is not None or key_file is not None):
        raise SecurityError(
            f"{labels.cert_file if cert_file is not None else labels.key_file}:"
            f" a client certificate needs TLS: set {labels.ca_file}"
        )
    if password_file is not None and not username:
        raise SecurityError(f"{labels.password_file}: needs {labels.username} too")
    context = tls_context(ca_file, cert_file, key_file, labels) if ca_file is not None else None
    password = read_secret(password_file, labels.password_file) if password_file else ""
    return BrokerSecurity(context, username, password)
