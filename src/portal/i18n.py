"""The portal's words in English, Japanese and Russian.

The same machinery as the messages (:mod:`ppx.rules.messages.render`): one YAML catalogue
per language (``ppx/portal/locales/<lang>.yaml``), look-ups that raise on a missing key or
placeholder, CLDR plural forms and Babel's dates, numbers and money. The languages are
the policy's ``messages.locales.supported``; a catalogue key missing in one language is
caught by a test, not by a shopper.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from functools import cache
from importlib import resources

import yaml
from babel.dates import format_date

from ppx.rules.messages.render import RenderError, _Words
from ppx.rules.policy import Policy

#: Names of the languages in their own language, for the language switch.
LANGUAGE_NAMES = {"en": "English", "ja": "日本語", "ru": "Русский"}


@cache
def catalogue(lang: str) -> dict:
    path = resources.files("ppx.portal") / "locales" / f"{lang}.yaml"
    if not path.is_file():
        raise RenderError(f"no portal catalogue for language {lang!r} ({path})")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def languages(policy: Policy) -> list[str]:
    return list(policy.messages.locales.supported)


def pick(lang: str | None, policy: Policy) -> str:
    """A supported language for a locale ("ja-JP" -> "ja"); else the policy's default."""
    if lang:
        code = lang.replace("_", "-").split("-", 1)[0].lower()
        if code in policy.messages.locales.supported:
            return code
    return policy.messages.locales.default


def from_accept_language(header: str | None, policy: Policy) -> str | None:
    """The first supported language of an ``Accept-Language`` header, by q order."""
    if not header:
        return None
    ranked = []
    for i, part in enumerate(header.split(",")):
        bits = part.strip().split(";q=")
        try:
            q = float(bits[1]) if len(bits) > 1 else 1.0
        except ValueError:
            q = 0.0
        ranked.append((-q, i, bits[0].strip()))
    for _, _, tag in sorted(ranked):
        code = tag.split("-", 1)[0].lower()
        if code in policy.messages.locales.supported:
            return code
    return None


class Words(_Words):
    """Look-ups in the portal catalogue (``tr``, ``trn``) plus the message formatters."""

    def __init__(self, lang: str, currency: str, zone: tzinfo = UTC):
        super().__init__("en", zone, currency)  # formatters and locale; catalogue below
        self.lang = lang
        self.cat = catalogue(lang)
        from ppx.rules.messages.render import _locale

        self.locale = _locale(lang)

    def label(self, group: str, value) -> str:
        """The catalogue's name for an open-ended value (a region, a ledger entry type);
        the value itself when the catalogue has none (a store's own region names)."""
        names = self.cat.get(group) or {}
        return str(names.get(str(value), value))

    def weekday(self, value) -> str:
        """The day of the week of a date ("Thursday", "木曜日", "четверг")."""
        return format_date(value, format="EEEE", locale=self.locale)

    def short_day(self, value) -> str:
        """A date with its weekday, e.g. "Thu, 4 Dec" in the language's own pattern."""
        return format_date(value, format="full", locale=self.locale)
