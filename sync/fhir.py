"""FHIR R4 resources for hospital systems that speak FHIR (`pulsegate hub export --fhir`).

Pure functions returning JSON-ready dicts:
- vital signs as `Observation`s (category vital-signs; LOINC codes and UCUM units of the FHIR
  R4 vital signs profiles: SpO2 59408-5 + 2708-6 in `%`, heart rate 8867-4 in `/min`, body
  temperature 8310-5 in `Cel`);
- a hub's per-minute summaries as vital-sign `Observation`s, the minute's median as the value
  over the minute (`summary_bundle`);
- an alert as a `DetectedIssue` (severity from the priority; status preliminary while the
  alert is live, final once closed; an acknowledgement as a mitigation), with the window
  statistic that fired it as its evidence `Observation` when the alert carries one.

Patients are referenced by their pseudonymous id as an identifier (PATIENT_ID_SYSTEM); the
hospital maps it to its own records. No names, ever.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from devices.protocols.reading import Metric
from sync.payload import iso_utc

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PATIENT_ID_SYSTEM = "urn:pulsegate:patient"
ALERT_ID_SYSTEM = "urn:pulsegate:alert"
RULE_SYSTEM = "urn:pulsegate:rule"
_FHIR_NAMESPACE = uuid.UUID("b0f3c0de-6f1e-4c55-9a0e-7d1f8f0c2a41")


@dataclass(frozen=True, slots=True)
class VitalSign:
    codes: tuple[tuple[str, str], ...]  # (LOINC code, display); the first is the main one
    text: str
    unit: str  # UCUM code, also used as the human unit
    unit_display: str


VITAL_SIGNS: dict[Metric, VitalSign] = {
    Metric.SPO2: VitalSign(
        (
            ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
            ("2708-6", "Oxygen saturation in Arterial blood"),
        ),
        "SpO2",
        "%",
        "%",
    ),
    Metric.PULSE: VitalSign((("8867-4", "Heart rate"),), "Heart rate", "/min", "beats/minute"),
    Metric.TEMP: VitalSign((("8310-5", "Body temperature"),), "Body temperature", "Cel", "C"),
}

# Rule families of CLINICAL_RULES.md: S = SpO2, H = pulse, T = temperature.
_RULE_FAMILY_METRIC = {"S": Metric.SPO2, "H": Metric.PULSE, "T": Metric.TEMP}
_SEVERITY = {"HIGH": "high", "MEDIUM": "moderate", "LOW": "low", "INFO": "low"}


def patient_reference(patient_id: str) -> dict[str, Any]:
    return {"identifier": {"system": PATIENT_ID_SYSTEM, "value": patient_id}}


def derived_id(*parts: str) -> str:
    """A stable resource id (a UUID) for a resource pulsegate derives from its own ids."""
    return str(uuid.uuid5(_FHIR_NAMESPACE, "/".join(parts)))


def vital_sign_observation(
    observation_id: str,
    patient_id: str,
    metric: Metric,
    value: float,
    *,
    effective_s: float | None = None,
    period_s: tuple[float, float] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """An R4 vital-signs Observation of `value` (in the metric's unit) at a time or over a
    period (give exactly one)."""
    if (effective_s is None) == (period_s is None):
        raise ValueError("give effective_s or period_s")
    sign = VITAL_SIGNS.get(metric)
    if sign is None:
        raise ValueError(f"{metric} has no FHIR vital-sign mapping")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": LOINC, "code": code, "display": display} for code, display in sign.codes
            ],
            "text": sign.text,
        },
        "subject": patient_reference(patient_id),
        "valueQuantity": {
            "value": value,
            "unit": sign.unit_display,
            "system": UCUM,
            "code": sign.unit,
        },
    }
    if period_s is not None:
        resource["effectivePeriod"] = {"start": iso_utc(period_s[0]), "end": iso_utc(period_s[1])}
    elif effective_s is not None:
        resource["effectiveDateTime"] = iso_utc(effective_s)
    if note:
        resource["note"] = [{"text": note}]
    return resource


def alert_evidence(alert: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Observation behind an alert: the median of its rule's metric over the window
    before onset, when the alert's details carry it (`window_median`, `window_s`)."""
    metric = _RULE_FAMILY_METRIC.get(str(alert["rule"])[:1])
    details = alert.get("details") or {}
    median = details.get("window_median")
    window_s = details.get("window_s")
    if metric is None or not _is_number(median) or not _is_number(window_s):
        return None
    onset_s = float(alert["onset_s"])
    return vital_sign_observation(
        derived_id(alert["alert_id"], "evidence"),
        alert["patient"],
        metric,
        float(median),
        period_s=(onset_s - float(window_s), onset_s),
        note=f"median over the {window_s:g} s before alert {alert['rule']} fired",
    )


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def detected_issue(
    alert: Mapping[str, Any], evidence_reference: str | None = None
) -> dict[str, Any]:
    """An R4 DetectedIssue for one hub alert row (see HubStore.list_alerts)."""
    rule = str(alert["rule"])
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": alert["alert_id"],
        "identifier": [{"system": ALERT_ID_SYSTEM, "value": alert["alert_id"]}],
        "status": "final" if alert["status"] == "closed" else "preliminary",
        "code": {
            "coding": [{"system": RULE_SYSTEM, "code": rule}],
            "text": f"pulsegate rule {rule} ({alert['priority']}, tier {alert['tier']},"
            f" profile {alert['profile']})",
        },
        "severity": _SEVERITY.get(str(alert["priority"]), "high"),
        "patient": patient_reference(alert["patient"]),
        "identifiedDateTime": iso_utc(float(alert["onset_s"])),
        "detail": f"status {alert['status']} at {iso_utc(float(alert['event_s']))},"
        f" gateway {alert['site']}/{alert['gateway']}",
    }
    if evidence_reference is not None:
        resource["evidence"] = [{"detail": [{"reference": evidence_reference}]}]
    acked_by = alert.get("acked_by") or alert.get("hub_acked_by")
    if acked_by:
        mitigation: dict[str, Any] = {
            "action": {"text": "Acknowledged"},
            "author": {"display": acked_by},
        }
        if alert.get("hub_acked_s") is not None:
            mitigation["date"] = iso_utc(float(alert["hub_acked_s"]))
        resource["mitigation"] = [mitigation]
    return resource


def alerts_bundle(alerts: Sequence[Mapping[str, Any]], now_s: float) -> dict[str, Any]:
    """A `collection` Bundle: each alert's DetectedIssue, preceded by its evidence."""
    entries: list[dict[str, Any]] = []
    for alert in alerts:
        evidence = alert_evidence(alert)
        reference = None
        if evidence is not None:
            reference = f"urn:uuid:{evidence['id']}"
            entries.append({"fullUrl": reference, "resource": evidence})
        entries.append(
            {
                "fullUrl": f"urn:uuid:{alert['alert_id']}",
                "resource": detected_issue(alert, reference),
            }
        )
    return _collection(entries, now_s)


def summary_observations(
    site: str, gateway: str, patient_id: str, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One Observation per minute and vital sign of a patient's summary rows (as
    HubStore.patient_summaries returns them): the median over the minute, with the minute's
    count, min and max in a note; minutes without a value and other metrics are left out."""
    observations = []
    for row in rows:
        try:
            metric = Metric(row["metric"])
        except ValueError:
            continue  # a metric this hub does not know
        if metric not in VITAL_SIGNS or not _is_number(row["median"]):
            continue
        minute_s = float(row["minute_s"])
        observations.append(
            vital_sign_observation(
                derived_id(site, gateway, patient_id, metric.value, f"{minute_s:.0f}"),
                patient_id,
                metric,
                float(row["median"]),
                period_s=(minute_s, minute_s + 60.0),
                note=f"median of {row['n']} readings in the minute"
                f" (min {row['min']:g}, max {row['max']:g}; {row['missing']} without a value)",
            )
        )
    return observations


def summary_bundle(observations: Sequence[dict[str, Any]], now_s: float) -> dict[str, Any]:
    """A `collection` Bundle of summary Observations."""
    entries = [{"fullUrl": f"urn:uuid:{o['id']}", "resource": o} for o in observations]
    return _collection(entries, now_s)


def _collection(entries: list[dict[str, Any]], now_s: float) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": derived_id("bundle", f"{now_s:.3f}"),
        "type": "collection",
        "timestamp": iso_utc(now_s),
        "entry": entries,
    }
