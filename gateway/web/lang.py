"""Which language a page is shown in.

Precedence, first that applies:
1. the language picked on the page (the 中文 / English links: `?lang=`, then kept in a cookie);
2. `[web] language` in the configuration, when it is set;
3. the browser's Accept-Language header: the supported language with the highest q-value
   (zh-CN, zh-TW, zh, en-US ... all count; ties keep the header's order);
4. Chinese (zh).

Pure: strings in, a language out.
"""

from __future__ import annotations

from gateway.i18n import DEFAULT_LANGUAGE, normalise_language

LANG_COOKIE = "lang"
MAX_HEADER_CHARS = 1000


def accept_language(header: str | None) -> str | None:
    """The best supported language of an Accept-Language header, or None."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(header[:MAX_HEADER_CHARS].split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = normalise_language(tag) if tag.strip() != "*" else None
        if language is None or not 0.0 < quality <= 1.0:
            continue
        candidate = (-quality, position, language)
        if best is None or candidate < best:
            best = candidate
    return None if best is None else best[2]


def choose_language(picked: str | None, configured: str | None, accept_header: str | None) -> str:
    """The page's language by the precedence in this module's docstring."""
    for choice in (picked, configured):
        if choice:
            language = normalise_language(choice)
            if language is not None:
                return language
    return accept_language(accept_header) or DEFAULT_LANGUAGE
