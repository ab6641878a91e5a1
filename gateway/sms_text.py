"""The text of an alert SMS, and how it is encoded for a GSM modem in text mode. Pure.

One alert, one SMS: a message never spans two SMS (concatenated SMS arrive out of order or in
part on the cheap phones families use), so the text is built to fit one: 160 characters in the
GSM 7-bit alphabet, or 70 in UCS2 (any Chinese character makes the whole message UCS2). The
parts are, most important first: priority, patient, rule, value, time, what to do; when they
do not fit, what to do is shortened, then dropped, then the patient's name is cut, then the
signature is dropped and the name cut further.

Phone numbers are shown and logged only masked (138****5678).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from alerts.escalation import Language, Role
from alerts.rules import Priority, RuleId

GSM_MAX_CHARS = 160
UCS2_MAX_UNITS = 70  # UTF-16 code units (140 bytes)
SIGNATURE = "pulsegate"
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
# Characters whose GSM 7-bit default-alphabet code (3GPP TS 23.038) is their ASCII code: sent
# as they are with AT+CSCS="GSM". Others ('@', '$', '_', brackets, accents) differ or need an
# escape, and are sent as UCS2 instead.
_GSM_SAFE = frozenset(
    " !\"#%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


class Charset(StrEnum):
    """The modem's character set for the message (AT+CSCS)."""

    GSM = "GSM"
    UCS2 = "UCS2"


class PhoneError(ValueError):
    """A phone number that cannot be dialled."""


def normalise_phone(phone: str) -> str:
    """The number as dialled: spaces, dashes, dots and brackets removed; `+` and 5-20 digits."""
    number = _PHONE_SEPARATORS.sub("", phone)
    if not _PHONE.match(number):
        raise PhoneError(f"{mask_phone(number)}: a phone number is 5-20 digits, optionally after +")
    return number


def mask_phone(phone: str) -> str:
    """The number with its middle hidden: 13812345678 -> 138****5678 (+86 kept in front)."""
    prefix = ""
    if phone.startswith("+86") and len(phone) > 11:
        prefix, phone = "+86", phone[3:]
    if len(phone) >= 8:
        return prefix + phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return prefix + "*" * max(0, len(phone) - 2) + phone[-2:]


def charset_of(text: str) -> Charset:
    """GSM when every character is sent as itself in the GSM alphabet, else UCS2."""
    return Charset.GSM if all(c in _GSM_SAFE for c in text) else Charset.UCS2


def fits_one_sms(text: str) -> bool:
    if charset_of(text) is Charset.GSM:
        return len(text) <= GSM_MAX_CHARS
    return len(text.encode("utf-16-be")) // 2 <= UCS2_MAX_UNITS


def ucs2_hex(text: str) -> str:
    """`text` as UCS2 hex, as AT+CSCS="UCS2" wants text and numbers: "你" -> "4F60"."""
    return text.encode("utf-16-be").hex().upper()


def from_ucs2_hex(hex_text: str) -> str:
    """The inverse of `ucs2_hex` (raises ValueError on odd or non-hex input)."""
    return bytes.fromhex(hex_text).decode("utf-16-be")


def clean(text: str) -> str:
    """One line of printable characters of the Basic Multilingual Plane (UCS2 has no others);
    no control characters (Ctrl-Z would end the message early)."""
    out = []
    for char in text:
        if ord(char) > 0xFFFF:
            out.append("?")
        elif not char.isprintable():
            out.append(" ")
        else:
            out.append(char)
    return " ".join("".join(out).split())


# -- the message ---------------------------------------------------------------------------------

_RULE_NAMES: dict[Language, dict[RuleId, str]] = {
    Language.ZH: {
        RuleId.S1: "血氧危急",
        RuleId.S2: "血氧过低",
        RuleId.S3: "血氧偏低",
        RuleId.S5: "血氧低于平时",
        RuleId.S6: "夜间血氧异常",
        RuleId.H1: "脉搏危急",
        RuleId.H2: "脉搏异常",
        RuleId.H3: "静息心率升高",
        RuleId.R1: "呼吸频率异常",
        RuleId.Q1: "血氧仪未夹好",
        RuleId.Q2: "测量信号差",
        RuleId.T1: "发热",
        RuleId.T2: "高热",
        RuleId.T3: "持续高热",
        RuleId.T4: "体温过低",
        RuleId.T5: "皮温升高",
        RuleId.N1: "NEWS2评分高",
        RuleId.Q3: "未按时测量",
        RuleId.Q5: "两台血氧仪读数不一致",
    },
    Language.EN: {
        RuleId.S1: "SpO2 critical",
        RuleId.S2: "SpO2 low",
        RuleId.S3: "SpO2 borderline",
        RuleId.S5: "SpO2 below usual",
        RuleId.S6: "night oximetry abnormal",
        RuleId.H1: "pulse critical",
        RuleId.H2: "pulse abnormal",
        RuleId.H3: "resting pulse up",
        RuleId.R1: "breathing rate abnormal",
        RuleId.Q1: "oximeter off the finger",
        RuleId.Q2: "poor signal",
        RuleId.T1: "fever",
        RuleId.T2: "high fever",
        RuleId.T3: "fever for days",
        RuleId.T4: "low temperature",
        RuleId.T5: "skin temperature up",
        RuleId.N1: "NEWS2 score high",
        RuleId.Q3: "scheduled reading missed",
        RuleId.Q5: "two oximeters disagree",
    },
}
_ZH_COMMA = "\uff0c"  # the full-width comma of Chinese text
_ZH_COLON = "\uff1a"  # the full-width colon
_PRIORITY_NAMES = {
    Language.ZH: {Priority.HIGH: "紧急", Priority.MEDIUM: "注意"},
    Language.EN: {Priority.HIGH: "URGENT", Priority.MEDIUM: "Notice"},
}


@dataclass(frozen=True, slots=True)
class AlertSms:
    """What one SMS says about one alert."""

    rule: RuleId
    priority: Priority
    patient: str  # the local display name, or the pseudonymous id
    details: dict[str, Any]
    onset_hhmm: str  # local time of the onset, e.g. "15:02"
    unacked_min: int  # 0 on the first level
    language: Language


def value_text(details: dict[str, Any], language: Language) -> str:
    """The measurement behind the alert, short: "SpO2 86%", "体温38.6°C", "pulse 135/min"."""
    zh = language is Language.ZH
    if isinstance(details.get("axillary_c"), int | float):
        temp_c = float(details["axillary_c"])
        return f"体温{temp_c:.1f}°C" if zh else f"temp {temp_c:.1f}C"
    value = details.get("window_median", details.get("value"))
    if not isinstance(value, int | float):
        return ""
    channel = details.get("channel")
    if channel == "spo2":
        return f"SpO2 {value:.0f}%"
    if channel == "pulse":
        return f"脉搏{value:.0f}次/分" if zh else f"pulse {value:.0f}/min"
    if channel == "resp":
        return f"呼吸{value:.0f}次/分" if zh else f"breathing {value:.0f}/min"
    return ""


def _tails(sms: AlertSms) -> list[str]:
    """What to do, from the full wording to nothing."""
    if sms.language is Language.ZH:
        if sms.unacked_min > 0:
            return [f"已{sms.unacked_min}分钟无人确认{_ZH_COMMA}请立即处理。", "请立即处理。", ""]
        return ["请尽快查看并确认。", "请查看。", ""]
    if sms.unacked_min > 0:
        return [
            f"Not acknowledged for {sms.unacked_min} min: please act now.",
            "Please act now.",
            "",
        ]
    return ["Please check and acknowledge.", "Please check.", ""]


def _render(sms: AlertSms, patient: str, tail: str, signed: bool = True) -> str:
    rule = _RULE_NAMES[sms.language].get(sms.rule, sms.rule.value)
    priority = _PRIORITY_NAMES[sms.language].get(sms.priority, sms.priority.value)
    value = value_text(sms.details, sms.language)
    if sms.language is Language.ZH:
        measured = f" {value}" if value else ""
        signature = f"【{SIGNATURE}】" if signed else ""
        text = (
            f"{signature}{priority}{_ZH_COLON}{patient} {rule}{measured}"
            f"{_ZH_COMMA}{sms.onset_hhmm}起。{tail}"
        )
    else:
        measured = f", {value}" if value else ""
        signature = f"{SIGNATURE} " if signed else ""
        text = f"{signature}{priority}: {patient} - {rule}{measured} since {sms.onset_hhmm}. {tail}"
    return clean(text)


def _cut(patient: str, shortest: int) -> list[str]:
    """The patient's name cut shorter and shorter, down to `shortest` characters and ".."."""
    return [patient[:length] + ".." for length in range(len(patient) - 1, shortest - 1, -1)]


def _wordings(sms: AlertSms, patient: str) -> Iterator[str]:
    """The message from its fullest wording to its shortest."""
    for tail in _tails(sms):
        yield _render(sms, patient, tail)
    for name in _cut(patient, 4):
        yield _render(sms, name, "")
    for name in [patient, *_cut(patient, 1)]:
        yield _render(sms, name, "", signed=False)


def compose(sms: AlertSms) -> str:
    """The SMS text, always within one SMS (see the module's docstring)."""
    text = ""
    for text in _wordings(sms, clean(sms.patient) or "?"):
        if fits_one_sms(text):
            return text
    return text


def patient_label(role: Role, patient_id: str, display_name: str | None) -> str:
    """The family and the village doctor read the local display name; the township doctor
    reads the pseudonymous id, as the hospital's dashboard shows it."""
    if role is Role.TOWNSHIP or not display_name:
        return patient_id
    return display_name
