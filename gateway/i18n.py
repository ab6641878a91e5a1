"""Translations: one gettext domain, `pulsegate`, for every text a person reads (the daily
report, the web pages). Message ids are English; `gateway/locale/zh_CN/LC_MESSAGES/` holds the
Chinese catalog (`pulsegate.po`) and its compiled form (`pulsegate.mo`, kept next to it so that
an install needs no build step). English needs no catalog: untranslated ids come back as they are.

Updating the catalogs (Babel's command line, `babel.cfg` at the top of the repository):

    pybabel extract -F babel.cfg -o /tmp/pulsegate.pot .
    pybabel update -i /tmp/pulsegate.pot -d gateway/locale -D pulsegate
    # translate the new entries of gateway/locale/zh_CN/LC_MESSAGES/pulsegate.po, then
    pybabel compile -d gateway/locale -D pulsegate

tests/gateway/test_i18n.py fails when a compiled catalog does not match its .po file.
"""

from __future__ import annotations

import functools
import gettext
from pathlib import Path

DOMAIN = "pulsegate"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
_CATALOG_LOCALES = {"zh": "zh_CN", "en": "en"}  # language -> directory under LOCALE_DIR


def normalise_language(tag: str) -> str | None:
    """The supported language of a tag such as `zh`, `zh-CN`, `zh_Hans_CN` or `en-US`
    (case-insensitive), or None when it is not one of LANGUAGES."""
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


@functools.cache
def translator(lang: str) -> gettext.NullTranslations:
    """The translations for `lang` (any tag `normalise_language` accepts).

    Raises ValueError for an unsupported language. For `en`, the message ids themselves."""
    language = normalise_language(lang)
    if language is None:
        raise ValueError(f"unsupported language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    return gettext.translation(
        DOMAIN, LOCALE_DIR, languages=[_CATALOG_LOCALES[language]], fallback=True
    )
