"""A patient's detector under its settings (tier, profile, rule overrides), and how a detector
follows a change of settings without losing what still applies.

A change of tier or profile is handled as it always was: the recent samples, the temperature
and NEWS2 state are kept, every window rule starts afresh. A change of overrides only: each
rule keeps whether it is active (an open alert clears by its new clear condition, it is not
forgotten); a rule whose definition changed restarts its clear run and SatSeconds, so it
clears or fires only on seconds judged by its new limits.
"""

from __future__ import annotations

import functools

from alerts.engine import PatientDetector
from alerts.rules import Profile, Tier, WindowRule
from sync.settings_payload import PatientSettings

NO_OVERRIDES = "{}"


@functools.lru_cache(maxsize=512)
def rules_for(tier: Tier, profile: Profile, overrides_json: str) -> tuple[WindowRule, ...]:
    """The window rules of these settings (one shared tuple per distinct settings)."""
    return PatientSettings(tier, profile, overrides_json).rules()


def refit_detector(
    old: PatientDetector | None, tier: Tier, profile: Profile, rules: tuple[WindowRule, ...]
) -> PatientDetector:
    """A new detector for (tier, profile, rules), carrying over from `old` what still
    applies (`old` itself is left as it was)."""
    if old is None:
        return PatientDetector(tier, profile, rules=rules)
    detector = PatientDetector.from_json(old.to_json(), tier, profile)
    detector.tails = dict(old.tails)  # from_json cut them to the default rules' length
    detector.rules = rules
    before = {rule.rule: rule for rule in old.rules}
    for rule in rules:
        state = detector.rule_states.get(rule.rule)
        if state is not None and before.get(rule.rule) != rule:
            state.clear_run_s = 0
            state.satseconds = 0.0
    return detector


def detector_for_settings(
    old: PatientDetector | None, settings: PatientSettings
) -> PatientDetector:
    """`refit_detector` for stored settings."""
    rules = rules_for(settings.tier, settings.profile, settings.overrides_json)
    return refit_detector(old, settings.tier, settings.profile, rules)
