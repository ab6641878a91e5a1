"""FHIR R4 export: codes, units and structure, checked against the fhir.resources models
(R4B, whose Observation, DetectedIssue and Bundle are R4's)."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.observation import Observation

from devices.protocols.reading import Metric
from sync.fhir import (
    LOINC,
    PATIENT_ID_SYSTEM,
    UCUM,
    alert_evidence,
    alerts_bundle,
    detected_issue,
    vital_sign_observation,
)

T_S = 1_780_000_000.0


def hub_alert(**changes: Any) -> dict[str, Any]:
    """A row as HubStore.list_alerts returns it."""
    row: dict[str, Any] = {
        "alert_id": "0b6f3c1e-2a51-5d8e-9f4a-1c2d3e4f5a6b",
        "site": "village-1",
        "gateway": "gw-1",
        "patient": "p-0042",
        "rule": "S1",
        "priority": "HIGH",
        "priority_rank": 0,
        "tier": "red",
        "profile": "default",
        "status": "open",
        "onset_s": T_S,
        "event_s": T_S,
        "details": {"window_median": 86.0, "window_min": 85.0, "window_s": 30, "limit": 88.0},
        "acked_by": None,
        "hub_acked_by": None,
        "hub_acked_s": None,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("metric", "value", "codes", "unit"),
    [
        (Metric.SPO2, 93.0, ["59408-5", "2708-6"], "%"),
        (Metric.PULSE, 112.0, ["8867-4"], "/min"),
        (Metric.TEMP, 38.4, ["8310-5"], "Cel"),
    ],
)
def test_vital_sign_observations_use_loinc_and_ucum(
    metric: Metric, value: float, codes: list[str], unit: str
) -> None:
    resource = vital_sign_observation("obs-1", "p-0042", metric, value, effective_s=T_S)
    Observation.model_validate(resource)
    assert resource["status"] == "final"
    assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
    assert [c["code"] for c in resource["code"]["coding"]] == codes
    assert {c["system"] for c in resource["code"]["coding"]} == {LOINC}
    quantity = resource["valueQuantity"]
    assert (quantity["value"], quantity["system"], quantity["code"]) == (value, UCUM, unit)
    assert resource["effectiveDateTime"] == "2026-05-28T20:26:40.000Z"
    assert resource["subject"] == {"identifier": {"system": PATIENT_ID_SYSTEM, "value": "p-0042"}}


def test_an_observation_needs_exactly_one_time_and_a_mapped_metric() -> None:
    with pytest.raises(ValueError, match="effective_s or period_s"):
        vital_sign_observation("o", "p", Metric.SPO2, 90.0)
    with pytest.raises(ValueError, match="effective_s or period_s"):
        vital_sign_observation("o", "p", Metric.SPO2, 90.0, effective_s=1.0, period_s=(0.0, 1.0))
    with pytest.raises(ValueError, match="no FHIR vital-sign mapping"):
        vital_sign_observation("o", "p", Metric.BATTERY, 50.0, effective_s=1.0)


def test_an_spo2_alert_becomes_a_detected_issue_with_its_window_as_evidence() -> None:
    alert = hub_alert()
    evidence = alert_evidence(alert)
    assert evidence is not None
    Observation.model_validate(evidence)
    assert evidence["code"]["coding"][0]["code"] == "59408-5"
    assert evidence["valueQuantity"]["value"] == 86.0
    assert evidence["effectivePeriod"] == {
        "start": "2026-05-28T20:26:10.000Z",
        "end": "2026-05-28T20:26:40.000Z",
    }
    issue = detected_issue(alert, f"urn:uuid:{evidence['id']}")
    DetectedIssue.model_validate(issue)
    assert (issue["status"], issue["severity"]) == ("preliminary", "high")
    assert issue["identifiedDateTime"] == "2026-05-28T20:26:40.000Z"
    assert issue["evidence"][0]["detail"][0]["reference"] == f"urn:uuid:{evidence['id']}"
    assert issue["patient"]["identifier"]["value"] == "p-0042"
    assert "mitigation" not in issue


@pytest.mark.parametrize(
    ("changes", "status", "severity"),
    [
        ({"status": "closed", "priority": "MEDIUM"}, "final", "moderate"),
        ({"priority": "LOW"}, "preliminary", "low"),
        ({"priority": "SOMETHING-NEW"}, "preliminary", "high"),
    ],
)
def test_status_and_severity_mapping(changes: dict[str, Any], status: str, severity: str) -> None:
    issue = detected_issue(hub_alert(**changes))
    DetectedIssue.model_validate(issue)
    assert (issue["status"], issue["severity"]) == (status, severity)


def test_an_acknowledgement_is_a_mitigation() -> None:
    issue = detected_issue(hub_alert(status="acked", hub_acked_by="dr-li", hub_acked_s=T_S + 60))
    DetectedIssue.model_validate(issue)
    [mitigation] = issue["mitigation"]
    assert mitigation["author"] == {"display": "dr-li"}
    assert mitigation["date"] == "2026-05-28T20:27:40.000Z"


def test_alerts_without_a_vital_sign_statistic_have_no_evidence() -> None:
    assert alert_evidence(hub_alert(rule="Q1")) is None
    assert alert_evidence(hub_alert(details={"fraction": 0.9})) is None
    assert alert_evidence(hub_alert(details={"window_median": True, "window_s": 30})) is None


def test_the_bundle_is_a_valid_collection() -> None:
    alerts = [hub_alert(), hub_alert(alert_id="1c6f3c1e-2a51-5d8e-9f4a-1c2d3e4f5a6c", rule="Q1")]
    bundle = alerts_bundle(alerts, T_S)
    Bundle.model_validate(bundle)
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds == ["Observation", "DetectedIssue", "DetectedIssue"]
    assert bundle["type"] == "collection"
    urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(set(urls)) == 3
    assert all(url.startswith("urn:uuid:") for url in urls)
