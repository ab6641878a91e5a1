"""TLS files and the password file: read once, checked, and every failure names its setting
(never the secret). No broker needed."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from gateway.config import ConfigError, parse_config
from sync.broker_security import (
    CLI_LABELS,
    CONFIG_LABELS,
    BrokerSecurity,
    SecurityError,
    load_security,
    read_secret,
)

SECRET = "s3cret-do-not-print"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a client certificate and key, and a second key that does not match it."""
    workdir = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    client = ca.issue_cert("gw-a")
    other = ca.issue_cert("gw-b")
    files = {name: workdir / f"{name}.pem" for name in ("ca", "cert", "key", "other_key")}
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    other.private_key_pem.write_to_path(str(files["other_key"]))
    return files


def secret_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "password"
    path.write_text(text)
    return path


def security(**overrides: object) -> BrokerSecurity:
    settings: dict[str, object] = {
        "ca_file": None,
        "cert_file": None,
        "key_file": None,
        "username": "",
        "password_file": None,
        "labels": CONFIG_LABELS,
    }
    settings.update(overrides)
    return load_security(**settings)  # type: ignore[arg-type]


def test_password_is_the_first_line_stripped(tmp_path: Path) -> None:
    assert read_secret(secret_file(tmp_path, f"  {SECRET} \n\n"), "x") == SECRET


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), ("", "is empty"), ("  \n", "is empty"), (b"\xff\xfe", "cannot read")],
)
def test_unusable_password_file_names_the_config_key(
    tmp_path: Path, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "password"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SecurityError, match=rf"^mqtt\.password_file: .*{expected}"):
        security(username="gw-a", password_file=path)


def test_a_directory_as_password_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match=r"^--password-file: .*cannot read"):
        load_security(
            ca_file=None,
            cert_file=None,
            key_file=None,
            username="hub",
            password_file=tmp_path,
            labels=CLI_LABELS,
        )


def test_password_never_appears_in_repr_or_errors(tmp_path: Path) -> None:
    loaded = security(username="gw-a", password_file=secret_file(tmp_path, SECRET))
    assert loaded.password == SECRET
    assert SECRET not in repr(loaded)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password_file": Path("/x")}, r"^mqtt\.password_file: needs mqtt\.username"),
        ({"cert_file": Path("/x")}, r"^mqtt\.tls_cert_file: .*set mqtt\.tls_ca_file"),
        ({"key_file": Path("/x")}, r"^mqtt\.tls_key_file: .*set mqtt\.tls_ca_file"),
        ({"ca_file": Path("/nonexistent/ca.pem")}, r"^mqtt\.tls_ca_file: .*no such file"),
    ],
)
def test_inconsistent_settings_name_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SecurityError, match=message):
        security(**overrides)


def test_ca_file_that_is_not_a_certificate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match=r"^mqtt\.tls_ca_file: .*not a PEM CA certificate"):
        security(ca_file=secret_file(tmp_path, "hello"))


def test_key_without_certificate_is_refused(pki: dict[str, Path]) -> None:
    with pytest.raises(SecurityError, match=r"^mqtt\.tls_key_file: needs mqtt\.tls_cert_file"):
        security(ca_file=pki["ca"], key_file=pki["key"])


def test_mismatched_client_key_is_refused(pki: dict[str, Path]) -> None:
    with pytest.raises(SecurityError, match=r"^mqtt\.tls_key_file: .*do not load"):
        security(ca_file=pki["ca"], cert_file=pki["cert"], key_file=pki["other_key"])


def test_tls_context_checks_the_broker_name_and_certificate(pki: dict[str, Path]) -> None:
    loaded = security(ca_file=pki["ca"], cert_file=pki["cert"], key_file=pki["key"])
    assert loaded.tls_context is not None
    assert loaded.tls_context.verify_mode is ssl.CERT_REQUIRED
    assert loaded.tls_context.check_hostname
    assert loaded.tls_context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_nothing_set_means_plain_mqtt_without_credentials() -> None:
    loaded = security()
    assert (loaded.tls, loaded.username, loaded.password) == (False, "", "")


def test_config_keys_are_parsed_and_read_at_security_time(tmp_path: Path) -> None:
    password_file = secret_file(tmp_path, SECRET)
    config = parse_config(
        {"mqtt": {"host": "b", "username": "gw-a", "password_file": str(password_file)}}
    )
    assert config.mqtt.password_file == password_file
    assert SECRET not in repr(config)
    assert config.mqtt.security().password == SECRET
    password_file.unlink()
    with pytest.raises(ConfigError, match=r"^mqtt\.password_file: .*no such file"):
        config.mqtt.security()


def test_empty_tls_keys_mean_none() -> None:
    mqtt = parse_config({"mqtt": {"tls_ca_file": "", "password_file": ""}}).mqtt
    assert (mqtt.tls_ca_file, mqtt.password_file) == (None, None)


def _pulsegate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )


def test_daemon_with_a_missing_password_file_stops_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "pulsegate.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n[mqtt]\nhost = "127.0.0.1"\n'
        f'username = "gw-a"\npassword_file = "{tmp_path / "missing"}"\n'
    )
    result = _pulsegate(tmp_path, "--config", str(config), "run", "--duration", "1")
    assert result.returncode == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: mqtt.password_file: ")
    assert error.endswith("missing: no such file")
    assert "Traceback" not in result.stderr


def test_status_never_shows_the_password(tmp_path: Path) -> None:
    config = tmp_path / "pulsegate.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n[mqtt]\nhost = "127.0.0.1"\n'
        f'username = "gw-a"\npassword_file = "{secret_file(tmp_path, SECRET)}"\n'
    )
    for args in (("status",), ("status", "--json")):
        result = _pulsegate(tmp_path, "--config", str(config), *args)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--username", "hub", "--password-file", "/nonexistent/pw"], "error: --password-file: "),
        (["--ca-file", "/nonexistent/ca.pem"], "error: --ca-file: "),
    ],
)
def test_hub_run_with_an_unusable_security_file_names_the_option(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    args = ["--config", str(config), "hub", "run", "--broker", "mqtt://127.0.0.1:1", *extra]
    result = _pulsegate(tmp_path, *args, "--db", str(tmp_path / "hub.db"))
    assert result.returncode == 2
    assert result.stderr.startswith(message)


def test_hub_mqtts_url_needs_a_ca_file(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    args = ["--config", str(config), "hub", "run", "--broker", "mqtts://localhost"]
    result = _pulsegate(tmp_path, *args, "--db", str(tmp_path / "hub.db"))
    assert result.returncode == 2
    assert "mqtts:// needs --ca-file" in result.stderr
