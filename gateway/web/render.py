"""Jinja2 for the web pages: one environment per language, with gettext from the `pulsegate`
catalogs (`gateway.i18n`), autoescaping on, and the small formatting helpers the templates
use (durations, values, clock times) in that language.
"""

from __future__ import annotations

import gettext
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from gateway.i18n import LANGUAGES, translator
from gateway.web.words import N_

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def _duration(gettext_: Callable[[str], str]) -> Callable[[float | None], str]:
    def duration(seconds: float | None) -> str:
        """A short, rounded duration: 45 s, 12 min, 3 h, 2 d."""
        if seconds is None or not math.isfinite(seconds):
            return "—"
        seconds = max(0, int(seconds))
        if seconds < 120:
            return gettext_(N_("%(n)d s")) % {"n": seconds}
        if seconds < 7200:
            return gettext_(N_("%(n)d min")) % {"n": seconds // 60}
        if seconds < 172_800:
            return gettext_(N_("%(n)d h")) % {"n": seconds // 3600}
        return gettext_(N_("%(n)d d")) % {"n": seconds // 86_400}

    return duration


def _number(value: float | None, digits: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def _clock(utc_offset_s: int) -> Callable[[float | None], str]:
    def clock(ts_s: float | None) -> str:
        """Local wall time HH:MM (the box's configured UTC offset)."""
        if ts_s is None:
            return "—"
        return time.strftime("%H:%M", time.gmtime(ts_s + utc_offset_s))

    return clock


class Renderer:
    """Renders templates in a language; one Jinja2 environment per language."""

    def __init__(self, utc_offset_s: int = 8 * 3600) -> None:
        self._envs = {lang: self._environment(lang, utc_offset_s) for lang in LANGUAGES}

    @staticmethod
    def _environment(lang: str, utc_offset_s: int) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=jinja2.select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        translations: gettext.NullTranslations = translator(lang)
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        env.filters["duration"] = _duration(translations.gettext)
        env.filters["number"] = _number
        env.filters["clock"] = _clock(utc_offset_s)
        env.globals["lang"] = lang
        return env

    def render(self, lang: str, template: str, **context: Any) -> str:
        return self._envs[lang].get_template(template).render(**context)

    def gettext(self, lang: str, message: str) -> str:
        return translator(lang).gettext(message)
