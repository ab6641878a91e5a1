"""The SMS text and its encodings: one SMS always, UCS2 round trips, masked numbers, and what
the modem's answers mean."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from alerts.escalation import Language, Role
from alerts.rules import Priority, RuleId
from gateway.sms_at import (
    Final,
    FinalKind,
    charset_commands,
    cmgs_command,
    describe_final,
    parse_final,
    parse_message_reference,
    text_bytes,
)
from gateway.sms_rate import RateLimit
from gateway.sms_text import (
    GSM_MAX_CHARS,
    UCS2_MAX_UNITS,
    AlertSms,
    Charset,
    PhoneError,
    charset_of,
    compose,
    fits_one_sms,
    from_ucs2_hex,
    mask_phone,
    normalise_phone,
    patient_label,
    ucs2_hex,
)

SPO2 = {"window_median": 86.0, "value": 85.0, "channel": "spo2", "limit": 88.0}
FEVER = {"value": 39.0, "axillary_c": 38.6, "site": "axillary"}
PULSE = {"window_median": 135.0, "channel": "pulse"}


def sms(**changes: Any) -> AlertSms:
    fields: dict[str, Any] = {
        "rule": RuleId.S1,
        "priority": Priority.HIGH,
        "patient": "王奶奶",
        "details": SPO2,
        "onset_hhmm": "15:02",
        "unacked_min": 0,
        "language": Language.ZH,
    }
    fields.update(changes)
    return AlertSms(**fields)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (sms(), "【pulsegate】紧急：王奶奶 血氧危急 SpO2 86%，15:02起。请尽快查看并确认。"),  # noqa: RUF001
        (
            sms(unacked_min=5),
            "【pulsegate】紧急：王奶奶 血氧危急 SpO2 86%，15:02起。已5分钟无人确认，请立即处理。",  # noqa: RUF001
        ),
        (
            sms(rule=RuleId.T2, priority=Priority.MEDIUM, details=FEVER),
            "【pulsegate】注意：王奶奶 高热 体温38.6°C，15:02起。请尽快查看并确认。",  # noqa: RUF001
        ),
        (
            sms(patient="Grandma Li", language=Language.EN),
            "pulsegate URGENT: Grandma Li - SpO2 critical, SpO2 86% since 15:02. "
            "Please check and acknowledge.",
        ),
        (
            sms(patient="p-0042", language=Language.EN, details=PULSE, rule=RuleId.H1),
            "pulsegate URGENT: p-0042 - pulse critical, pulse 135/min since 15:02. "
            "Please check and acknowledge.",
        ),
        (
            sms(patient="p-0042", language=Language.EN, unacked_min=15, rule=RuleId.S6, details={}),
            "pulsegate URGENT: p-0042 - night oximetry abnormal since 15:02. "
            "Not acknowledged for 15 min: please act now.",
        ),
    ],
)
def test_the_message_names_priority_patient_rule_value_and_time(
    message: AlertSms, expected: str
) -> None:
    assert compose(message) == expected
    assert fits_one_sms(expected)


def test_english_stays_in_the_gsm_alphabet_and_chinese_is_ucs2() -> None:
    assert charset_of(compose(sms(patient="p-0042", language=Language.EN))) is Charset.GSM
    assert charset_of(compose(sms())) is Charset.UCS2
    # A Chinese name in an English message makes it UCS2, and it still fits 70 units.
    text = compose(sms(language=Language.EN, unacked_min=10))
    assert charset_of(text) is Charset.UCS2
    assert len(text) <= UCS2_MAX_UNITS
    assert "王奶奶" in text


def test_a_long_name_is_cut_but_the_rule_value_and_time_stay() -> None:
    text = compose(sms(patient="张" * 64, unacked_min=30))
    assert len(text) <= UCS2_MAX_UNITS
    assert "血氧危急" in text
    assert "SpO2 86%" in text
    assert "15:02" in text
    assert "张.." in text


@given(
    rule=st.sampled_from(list(RuleId)),
    priority=st.sampled_from([Priority.HIGH, Priority.MEDIUM]),
    patient=st.text(max_size=64),
    details=st.sampled_from([SPO2, FEVER, PULSE, {}, {"value": 28.0, "channel": "resp"}]),
    unacked_min=st.integers(0, 100_000),
    language=st.sampled_from(list(Language)),
)
# A one-character name outside the GSM alphabet makes the message UCS2 (70 units); only
# dropping the signature makes it fit.
@example(RuleId.R1, Priority.HIGH, "{", PULSE, 0, Language.EN)
def test_every_message_fits_one_sms_and_has_no_control_characters(
    rule: RuleId,
    priority: Priority,
    patient: str,
    details: dict[str, Any],
    unacked_min: int,
    language: Language,
) -> None:
    message = AlertSms(rule, priority, patient, details, "23:59", unacked_min, language)
    text = compose(message)
    assert fits_one_sms(text)
    assert all(c.isprintable() for c in text)
    assert "23:59" in text
    if charset_of(text) is Charset.GSM:
        assert len(text) <= GSM_MAX_CHARS
        assert text_bytes(text, Charset.GSM) == text.encode("ascii")


@given(st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"])))
def test_ucs2_hex_decodes_back_to_the_same_text(text: str) -> None:
    encoded = ucs2_hex(text)
    assert len(encoded) == 4 * len(text)
    assert from_ucs2_hex(encoded) == text


def test_ucs2_hex_of_chinese_text() -> None:
    assert ucs2_hex("你好") == "4F60597D"
    assert cmgs_command("10086", Charset.UCS2) == 'AT+CMGS="00310030003000380036"'
    assert cmgs_command("10086", Charset.GSM) == 'AT+CMGS="10086"'
    assert text_bytes("血氧", Charset.UCS2) == b"88406C27"
    assert charset_commands(Charset.UCS2) == ['AT+CSCS="UCS2"', "AT+CSMP=17,167,0,8"]
    assert charset_commands(Charset.GSM) == ['AT+CSCS="GSM"', "AT+CSMP=17,167,0,0"]


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("02012345678", "020****5678"),
        ("10086", "***86"),
    ],
)
def test_phone_numbers_are_masked(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_phone_numbers_are_normalised_or_refused_without_echoing_them() -> None:
    assert normalise_phone("138 1234-5678") == "13812345678"
    assert normalise_phone("+86 (138) 1234 5678") == "+8613812345678"
    with pytest.raises(PhoneError) as caught:
        normalise_phone("138123456789012345678x")
    assert "123456789012345" not in str(caught.value)
    with pytest.raises(PhoneError):
        normalise_phone("12")


def test_the_township_reads_the_pseudonym_and_the_family_the_display_name() -> None:
    assert patient_label(Role.FAMILY, "p-0042", "王奶奶") == "王奶奶"
    assert patient_label(Role.DOCTOR, "p-0042", "王奶奶") == "王奶奶"
    assert patient_label(Role.TOWNSHIP, "p-0042", "王奶奶") == "p-0042"
    assert patient_label(Role.FAMILY, "p-0042", None) == "p-0042"


@pytest.mark.parametrize(
    ("line", "final"),
    [
        ("OK", Final(FinalKind.OK)),
        ("ERROR", Final(FinalKind.ERROR)),
        ("+CMS ERROR: 331", Final(FinalKind.CMS_ERROR, 331)),
        ("+CME ERROR: 10", Final(FinalKind.CME_ERROR, 10)),
        ("+CMGS: 12", None),
        ('+CMTI: "SM",3', None),
        ("RING", None),
    ],
)
def test_final_result_codes(line: str, final: Final | None) -> None:
    assert parse_final(line) == final


def test_message_reference_and_error_reasons() -> None:
    assert parse_message_reference("+CMGS: 12") == 12
    assert parse_message_reference("+CMGS:255") == 255
    assert parse_message_reference("OK") is None
    assert describe_final(Final(FinalKind.CMS_ERROR, 331)) == (
        "+CMS ERROR 331: no network service (no signal, or not registered)",
        True,
    )
    assert describe_final(Final(FinalKind.CMS_ERROR, 1))[1] is False


def test_the_rate_limit_spaces_messages_and_caps_any_hour() -> None:
    limit = RateLimit(min_interval_s=5.0, max_per_hour=3)
    assert limit.wait_s(0.0) == 0.0
    limit.record(0.0)
    assert limit.wait_s(1.0) == 4.0
    assert limit.wait_s(5.0) == 0.0
    limit.record(5.0)
    limit.record(10.0)
    assert limit.wait_s(15.0) == 3585.0  # three in the hour: the first must age out
    assert limit.wait_s(3600.0) == 0.0
    limit.record(3600.0)
    assert limit.wait_s(3601.0) == 4.0
