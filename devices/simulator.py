"""Simulated patients wearing simulated devices that speak the real byte protocols.

Each patient follows a scenario (a pure function of the seconds since the start) and wears a
BerryMed BCI oximeter (5-byte frames, several per notification, sometimes split across two
notifications as BLE links do) and a Health Thermometer that indicates a reading a minute.
The daemon decodes these bytes exactly as it decodes hardware. A scenario repeats every
`SCENARIO_CYCLE_S`, and a restarted simulation continues where the patient's scenario was (its
origin is when the device was bound), as a real patient does while the gateway is down.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from devices.clock import Clock
from devices.protocols.oximeter_berrymed import encode_bci_frame
from devices.protocols.reading import BodySite
from devices.protocols.thermometer_hts import encode_temperature_measurement

FRAMES_PER_SECOND = 3
TEMPERATURE_INTERVAL_S = 60
BytesSink = Callable[[str, float, bytes], Awaitable[None]]


class Scenario(StrEnum):
    HEALTHY = "healthy"
    DESATURATION = "desaturation"  # slow fall to 86 %, held, then recovery
    FEVER = "fever"  # temperature rising to 39.3 °C
    PROBE_OFF = "probe_off"  # no finger in the clip for 2 minutes


@dataclass(frozen=True, slots=True)
class Vitals:
    spo2_percent: int | None
    pulse_bpm: int | None
    temp_c: float
    finger_out: bool = False


# Scenario timelines, seconds since the start.
DESAT_START_S, DESAT_NADIR_S, DESAT_HOLD_END_S, DESAT_RECOVERED_S = 60, 240, 420, 540
DESAT_BASELINE_PERCENT, DESAT_NADIR_PERCENT = 96.5, 86.0
FEVER_START_S, FEVER_PEAK_S = 60, 480
FEVER_BASELINE_C, FEVER_PEAK_C = 36.8, 39.3
PROBE_OFF_START_S, PROBE_OFF_END_S = 120, 240
SCENARIO_CYCLE_S = 1200  # every scenario starts again after 20 minutes


def _ramp(t_s: float, t0_s: float, t1_s: float, v0: float, v1: float) -> float:
    if t_s <= t0_s:
        return v0
    if t_s >= t1_s:
        return v1
    return v0 + (v1 - v0) * (t_s - t0_s) / (t1_s - t0_s)


def vitals_at(scenario: Scenario, t_s: float, rng: random.Random) -> Vitals:
    """The simulated patient's vitals `t_s` seconds into the scenario, with sensor noise."""
    spo2 = 97.0
    pulse = 72.0
    temp_c = 36.7
    if scenario is Scenario.DESATURATION:
        if t_s < DESAT_HOLD_END_S:
            spo2 = _ramp(
                t_s, DESAT_START_S, DESAT_NADIR_S, DESAT_BASELINE_PERCENT, DESAT_NADIR_PERCENT
            )
        else:
            spo2 = _ramp(
                t_s,
                DESAT_HOLD_END_S,
                DESAT_RECOVERED_S,
                DESAT_NADIR_PERCENT,
                DESAT_BASELINE_PERCENT,
            )
        pulse += (DESAT_BASELINE_PERCENT - spo2) * 2.0  # tachycardia as saturation falls
    elif scenario is Scenario.FEVER:
        temp_c = _ramp(t_s, FEVER_START_S, FEVER_PEAK_S, FEVER_BASELINE_C, FEVER_PEAK_C)
        pulse += (temp_c - FEVER_BASELINE_C) * 10.0  # about 10 bpm per °C
    elif scenario is Scenario.PROBE_OFF and PROBE_OFF_START_S <= t_s < PROBE_OFF_END_S:
        return Vitals(None, None, temp_c, finger_out=True)
    return Vitals(
        spo2_percent=min(100, round(spo2 + rng.gauss(0, 0.6))),
        pulse_bpm=round(pulse + rng.gauss(0, 1.5)),
        temp_c=round(temp_c + rng.gauss(0, 0.05), 2),
    )


@dataclass(frozen=True, slots=True)
class SimulatedPatient:
    patient_id: str
    scenario: Scenario
    tier: str
    profile: str = "default"

    @property
    def oximeter_id(self) -> str:
        return f"sim-oximeter-{self.patient_id}"

    @property
    def thermometer_id(self) -> str:
        return f"sim-thermometer-{self.patient_id}"


DEMO_PATIENTS = (
    SimulatedPatient("demo-healthy", Scenario.HEALTHY, "green"),
    SimulatedPatient("demo-desaturation", Scenario.DESATURATION, "red"),
    SimulatedPatient("demo-fever", Scenario.FEVER, "yellow"),
    SimulatedPatient("demo-probe-off", Scenario.PROBE_OFF, "green"),
)


def oximeter_bytes(vitals: Vitals, rng: random.Random) -> list[bytes]:
    """One second of BCI frames, as one or two notifications (split at a random byte)."""
    frame = encode_bci_frame(
        vitals.spo2_percent,
        vitals.pulse_bpm,
        finger_out=vitals.finger_out,
        searching=vitals.finger_out,
        signal_strength=0 if vitals.finger_out else 7,
    )
    stream = frame * FRAMES_PER_SECOND
    if rng.random() < 0.3:
        cut = rng.randrange(1, len(stream))
        return [stream[:cut], stream[cut:]]
    return [stream]


async def run_patient(
    patient: SimulatedPatient,
    clock: Clock,
    sink: BytesSink,
    seed: int = 0,
    origin_s: float | None = None,
) -> None:
    """Emit the patient's device bytes into `sink` until cancelled; the scenario's time counts
    from `origin_s` (default: now)."""
    start_s = clock.now_s()
    elapsed_s = 0 if origin_s is None else max(0, int(start_s - origin_s))
    rng = random.Random(f"{seed}/{patient.patient_id}" + (f"/{elapsed_s}" if elapsed_s else ""))
    start_s -= elapsed_s
    next_temperature_s = elapsed_s + 5.0
    while True:
        vitals = vitals_at(patient.scenario, elapsed_s % SCENARIO_CYCLE_S, rng)
        for chunk in oximeter_bytes(vitals, rng):
            await sink(patient.oximeter_id, clock.now_s(), chunk)
        if elapsed_s >= next_temperature_s:
            measurement = encode_temperature_measurement(vitals.temp_c, site=BodySite.AXILLARY)
            await sink(patient.thermometer_id, clock.now_s(), measurement)
            next_temperature_s += TEMPERATURE_INTERVAL_S
        elapsed_s += 1
        await clock.sleep_s(max(0.0, start_s + elapsed_s - clock.now_s()))
