"""Words the pages show for stored codes (rule ids, tiers, priorities, statuses, device
states), marked for translation with `N_` so that `pybabel extract` finds them; the templates
translate them with `_()` at render time."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 (gettext's marker name, known to pybabel)
    return message


RULE_NAMES = {
    "S1": N_("critical SpO2"),
    "S2": N_("severe low SpO2"),
    "S3": N_("borderline SpO2"),
    "S5": N_("SpO2 below baseline"),
    "S6": N_("night-time desaturations"),
    "H1": N_("critical pulse"),
    "H2": N_("abnormal pulse"),
    "H3": N_("resting pulse rising"),
    "R1": N_("abnormal respiration"),
    "Q1": N_("probe off"),
    "Q2": N_("poor-quality data"),
    "T1": N_("fever"),
    "T2": N_("high fever"),
    "T3": N_("persistent fever"),
    "T4": N_("hypothermia"),
    "T5": N_("skin temperature rising"),
    "N1": N_("NEWS2 score"),
    "Q3": N_("scheduled reading missed"),
    "Q5": N_("oximeters disagree"),
}
TIER_NAMES = {"red": N_("red: key"), "yellow": N_("yellow: sub-key"), "green": N_("green")}
PRIORITY_NAMES = {"HIGH": N_("HIGH"), "MEDIUM": N_("MEDIUM"), "LOW": N_("LOW"), "INFO": N_("INFO")}
STATUS_NAMES = {
    "open": N_("open"),
    "acked": N_("acknowledged"),
    "resolved": N_("resolved, not acknowledged"),
    "closed": N_("closed"),
}
DEVICE_STATES = {
    "starting": N_("starting"),
    "scanning": N_("searching"),
    "connecting": N_("connecting"),
    "connected": N_("connected"),
    "waiting": N_("reconnecting"),
    "stopped": N_("stopped"),
    "receiving": N_("receiving"),
    "silent": N_("silent"),
}
GATEWAY_STATES = {"online": N_("online"), "offline": N_("offline"), None: N_("unknown")}
METRIC_NAMES = {
    "spo2_percent": N_("SpO2"),
    "pulse_bpm": N_("Pulse"),
    "temp_c": N_("Temperature"),
}


def word(table: dict[object, str], key: object) -> str:
    """The English word for `key` (translated by the template), or the key itself."""
    return table.get(key, str(key))
