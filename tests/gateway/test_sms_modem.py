"""The SMS modem driver against a simulated modem on a pty (tests/gateway/modem_sim.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.sms_modem import ModemTiming, SmsError, SmsModem
from tests.gateway.modem_sim import SILENT, PtyModem

NUMBER = "+8613812345678"
ZH_TEXT = "【pulsegate】紧急：王奶奶 血氧危急 SpO2 86%，15:02起。请尽快查看并确认。"  # noqa: RUF001
EN_TEXT = "pulsegate URGENT: Grandma Li - SpO2 critical, SpO2 86% since 15:02. Please check."
FAST = ModemTiming(command_timeout_s=3.0, prompt_timeout_s=3.0, send_timeout_s=20.0)


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "ttyUSB2"


@pytest.fixture
def modem(link: Path) -> Iterator[SmsModem]:
    driver = SmsModem(str(link), 115200, FAST)
    yield driver
    driver.close()


def test_chinese_text_goes_as_ucs2_and_decodes_back(link: Path, modem: SmsModem) -> None:
    with PtyModem(link) as sim:
        reference = modem.send(NUMBER, ZH_TEXT)
    assert reference == 12
    [sms] = sim.messages
    assert (sms.number, sms.text, sms.charset, sms.dcs) == (NUMBER, ZH_TEXT, "UCS2", 8)
    assert sim.commands[:3] == ["AT", "ATE0", "AT+CMGF=1"]
    assert 'AT+CSCS="UCS2"' in sim.commands
    assert "AT+CSMP=17,167,0,8" in sim.commands
    cmgs = next(c for c in sim.commands if c.startswith("AT+CMGS="))
    assert cmgs == 'AT+CMGS="002B0038003600310033003800310032003300340035003600370038"'


def test_plain_ascii_goes_in_the_gsm_alphabet(link: Path, modem: SmsModem) -> None:
    with PtyModem(link) as sim:
        assert modem.send("13812345678", EN_TEXT) == 12
        assert modem.send("13812345678", EN_TEXT + " 2") == 13
    assert [(m.charset, m.dcs, m.number) for m in sim.messages] == [("GSM", 0, "13812345678")] * 2
    assert [m.text for m in sim.messages] == [EN_TEXT, EN_TEXT + " 2"]
    assert sim.commands.count("AT") == 1  # initialised once, then kept open


def test_the_echo_before_ate0_and_unsolicited_lines_are_ignored(
    link: Path, modem: SmsModem
) -> None:
    with PtyModem(link) as sim:
        sim.unsolicited("RDY")
        sim.unsolicited("+CPIN: READY")
        time.sleep(0.1)
        assert modem.send(NUMBER, EN_TEXT) == 12
        sim.unsolicited('+CMTI: "SM",3')
        assert modem.send(NUMBER, EN_TEXT) == 13
    assert not sim.echo
    assert len(sim.messages) == 2


def test_no_network_is_a_retryable_error_and_the_modem_stays_usable(
    link: Path, modem: SmsModem
) -> None:
    with PtyModem(link, outcomes=["+CMS ERROR: 331"]) as sim:
        with pytest.raises(SmsError, match="CMS ERROR 331: no network service") as caught:
            modem.send(NUMBER, ZH_TEXT)
        assert caught.value.retryable
        assert modem.send(NUMBER, ZH_TEXT) == 12
    assert sim.answers == ["+CMS ERROR: 331", "success"]
    assert [m.text for m in sim.messages] == [ZH_TEXT]


@pytest.mark.parametrize(
    ("answer", "reason", "retryable"),
    [
        ("+CMS ERROR: 1", "unassigned number", False),
        ("+CMS ERROR: 30", "unknown subscriber", False),
        ("+CMS ERROR: 42", "network congestion", True),
        ("+CMS ERROR: 330", "SMS centre address unknown", True),
        ("+CMS ERROR: 599", "CMS ERROR 599", True),
        ("+CME ERROR: 10", "CME ERROR 10", True),
        ("ERROR", "answered ERROR", True),
    ],
)
def test_modem_errors_are_named_and_classified(
    link: Path, modem: SmsModem, answer: str, reason: str, retryable: bool
) -> None:
    with PtyModem(link, outcomes=[answer]), pytest.raises(SmsError, match=reason) as caught:
        modem.send(NUMBER, EN_TEXT)
    assert caught.value.retryable is retryable


def test_a_slow_network_answer_is_waited_for(link: Path, modem: SmsModem) -> None:
    with PtyModem(link, cmgs_delay_s=2.0) as sim:
        assert modem.send(NUMBER, EN_TEXT) == 12
    assert len(sim.messages) == 1


def test_no_answer_in_time_fails_and_the_modem_is_initialised_again(link: Path) -> None:
    impatient = SmsModem(str(link), 115200, ModemTiming(3.0, 3.0, send_timeout_s=0.5))
    with PtyModem(link, outcomes=[SILENT]) as sim:
        with pytest.raises(SmsError, match=r"no answer from the network within 0\.5 s") as caught:
            impatient.send(NUMBER, EN_TEXT)
        assert caught.value.retryable
        assert "5678" in caught.value.reason
        assert "12345678" not in caught.value.reason  # the number is masked
        assert impatient.send(NUMBER, EN_TEXT) == 12
    impatient.close()
    assert sim.commands.count("AT") == 2


def _late(link: Path, outcome: str) -> tuple[SmsModem, PtyModem]:
    """A network answering `outcome` 1 s after the text, to a driver that waits 0.5 s."""
    impatient = SmsModem(str(link), 115200, ModemTiming(3.0, 3.0, send_timeout_s=0.5))
    return impatient, PtyModem(link, cmgs_delay_s=1.0, outcomes=[outcome])


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_late_answer_is_read_and_the_retry_of_the_same_text_is_not_sent_twice(
    link: Path,
) -> None:
    impatient, network = _late(link, "success")
    with network as sim:
        with pytest.raises(SmsError, match="may have gone"):
            impatient.send(NUMBER, EN_TEXT)
        _until(lambda: bool(sim.messages))  # the network took it after all
        assert impatient.send(NUMBER, EN_TEXT) == 12
    impatient.close()
    assert len(sim.submitted) == 1
    assert sim.commands.count("AT") == 1  # the modem was not reset


def test_after_a_late_answer_a_different_text_is_still_sent(link: Path) -> None:
    impatient, network = _late(link, "success")
    with network as sim:
        with pytest.raises(SmsError, match="may have gone"):
            impatient.send(NUMBER, EN_TEXT)
        _until(lambda: bool(sim.messages))
        impatient.timing = FAST
        assert impatient.send(NUMBER, EN_TEXT + " 2") == 13
    impatient.close()
    assert [m.text for m in sim.messages] == [EN_TEXT, EN_TEXT + " 2"]


def test_a_late_refusal_means_the_retry_is_sent(link: Path) -> None:
    impatient, network = _late(link, "+CMS ERROR: 331")
    with network as sim:
        with pytest.raises(SmsError, match="may have gone"):
            impatient.send(NUMBER, EN_TEXT)
        _until(lambda: len(sim.answers) == 1)
        impatient.timing = FAST
        assert impatient.send(NUMBER, EN_TEXT) == 12
    impatient.close()
    assert len(sim.submitted) == 2 and [m.text for m in sim.messages] == [EN_TEXT]


def test_a_modem_that_does_not_answer_is_a_clear_error(link: Path, modem: SmsModem) -> None:
    with PtyModem(link, mute=True), pytest.raises(SmsError, match="no answer to AT"):
        modem.send(NUMBER, EN_TEXT)


def test_a_missing_port_is_a_clear_error(modem: SmsModem, link: Path) -> None:
    with pytest.raises(SmsError, match=f"modem port {link}"):
        modem.send(NUMBER, EN_TEXT)


def test_a_text_longer_than_one_sms_is_refused_before_dialling(link: Path, modem: SmsModem) -> None:
    with PtyModem(link) as sim, pytest.raises(SmsError, match="does not fit") as caught:
        modem.send(NUMBER, "血" * 71)
    assert not caught.value.retryable
    assert sim.commands == []


def test_cancel_ends_a_long_wait(link: Path) -> None:
    patient = SmsModem(str(link), 115200, ModemTiming(3.0, 3.0, send_timeout_s=600.0))
    errors: list[SmsError] = []

    def send() -> None:
        try:
            patient.send(NUMBER, EN_TEXT)
        except SmsError as exc:
            errors.append(exc)

    with PtyModem(link, outcomes=[SILENT]) as sim:
        worker = threading.Thread(target=send)
        worker.start()
        deadline = time.monotonic() + 10
        while not sim.submitted and time.monotonic() < deadline:
            time.sleep(0.05)
        patient.cancel()
        worker.join(timeout=30)
    patient.close()
    assert not worker.is_alive()
    assert [e.reason for e in errors] == ["cancelled (the daemon is stopping)"]
