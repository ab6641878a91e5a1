"""The translation catalogs: each compiled .mo says what its .po says, every Chinese entry is
translated and keeps the placeholders of its message id ({name} and %(name)s alike), every
string marked for translation anywhere pybabel looks (babel.cfg: the Python sources, the
templates) is in the catalog, and language tags are understood."""

from __future__ import annotations

import gettext
import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from gateway.i18n import DOMAIN, LOCALE_DIR, normalise_language, translator

REPO = Path(__file__).resolve().parents[2]
PO_FILES = sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
REPORT_SOURCES = ("gateway/report_render.py", "gateway/report_text.py")


def _catalog(po: Path) -> Catalog:
    with po.open("rb") as handle:
        return read_po(handle, domain=DOMAIN)


_PERCENT_FIELD = re.compile(r"%\(\w+\)[sdifg]|%%")


def _fields(text: str) -> set[str]:
    """The placeholders of a message: str.format fields, and %-style named fields and %%."""
    braces = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    return braces | set(_PERCENT_FIELD.findall(text))


def test_placeholders_of_both_styles_are_found() -> None:
    assert _fields("{minutes} min ({share} %)") == {"minutes", "share"}
    assert _fields("battery %(percent)s %%") == {"%(percent)s", "%%"}
    assert _fields("%(age)s ago") != _fields("%(when)s ago")


def test_there_is_a_chinese_catalog() -> None:
    assert [po.parent.parent.name for po in PO_FILES] == ["zh_CN"]


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_the_compiled_catalog_matches_its_source(po: Path) -> None:
    with po.with_suffix(".mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for message in _catalog(po):
        if message.id and isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string, (
                f"{po.with_suffix('.mo')} is stale: run pybabel compile -d gateway/locale "
                f"-D {DOMAIN}"
            )


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_every_entry_is_translated_and_keeps_its_placeholders(po: Path) -> None:
    for message in _catalog(po):
        if not message.id or not isinstance(message.id, str):
            continue
        assert message.string, f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        assert _fields(message.string) == _fields(message.id), message.id


def test_every_report_string_is_in_the_chinese_catalog() -> None:
    catalog = _catalog(LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / f"{DOMAIN}.po")
    marked = {
        message
        for source in REPORT_SOURCES
        for _, message, _, _ in extract_from_file("python", str(REPO / source))
        if isinstance(message, str)
    }
    assert len(marked) > 50
    missing = sorted(m for m in marked if not catalog.get(m) or not catalog.get(m).string)
    assert missing == []


def test_every_marked_string_of_the_pages_and_the_report_is_in_the_chinese_catalog() -> None:
    with (REPO / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    marked = {
        message
        for _, _, message, _, _ in extract_from_dir(str(REPO), method_map, options_map)
        if isinstance(message, str)
    }
    assert "Wrong PIN. The alert was not acknowledged." in marked  # the templates and pages
    assert "critical SpO2" in marked  # gateway/web/words.py
    catalog = _catalog(LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / f"{DOMAIN}.po")
    missing = sorted(m for m in marked if not catalog.get(m) or not catalog.get(m).string)
    assert missing == []


def test_translations_by_language() -> None:
    assert translator("zh").gettext("Daily oximetry and temperature report") == "每日血氧与体温报告"
    assert translator("en").gettext("Daily oximetry and temperature report") == (
        "Daily oximetry and temperature report"
    )
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        translator("fr")


@pytest.mark.parametrize(
    ("tag", "language"),
    [("zh", "zh"), ("zh-CN", "zh"), ("zh_Hans_CN", "zh"), ("ZH-tw", "zh"), ("en-US", "en")],
)
def test_language_tags(tag: str, language: str) -> None:
    assert normalise_language(tag) == language


def test_an_unsupported_tag_is_none() -> None:
    assert normalise_language("fr-FR") is None
    assert normalise_language("") is None
