"""Render a planned message as a subject, a plain-text body and an HTML body.

Templates (``templates/<kind>.txt.j2`` and ``.html.j2``, package data) hold the layout;
words come from one small catalogue per language (``locales/<lang>.yaml``), so a
translator edits YAML and never touches a template. Both fail loudly: the Jinja
environment uses ``StrictUndefined`` (a variable the template needs but the message does
not carry raises), and a catalogue key or placeholder that is missing raises
:class:`RenderError` naming the language and the key, instead of sending a message with a
hole in it.

Dates and times are written in the customer's language (Babel's CLDR formats) and time
zone: ``CustomerContext.time_zone`` (IANA name) when given, else the fixed
``utc_offset_minutes``. Counts pick the language's plural form (CLDR: "1 балл, 2 балла,
5 баллов").
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, UndefinedError

from ppx.rules.policy import Policy
from ppx.rules.types import CustomerContext

#: Kinds whose message shows the points balance and the points to the next reward.
LOYALTY_KINDS = (
    "apology",
    "points_earned",
    "points_expiring",
    "tier_change",
    "tier_upgrade",
    "birthday",
    "anniversary",
    "win_back",
)


_BLANKS = re.compile(r"\n{3,}")


class RenderError(ValueError):
    """A message that cannot be rendered: a missing template, key, or value."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    locale: str


@dataclass(frozen=True)
class LoyaltyView:
    """What a loyalty-bearing message shows: the balance and the next reward."""

    balance: int
    next_reward: str | None = None  # the cheapest reward not yet affordable, by name
    points_to_next_reward: int | None = None  # None when every reward is affordable
    affordable_reward: str | None = None  # the best reward the balance already covers


@cache
def _catalogue(lang: str) -> dict:
    path = resources.files("ppx.rules.messages") / "locales" / f"{lang}.yaml"
    if not path.is_file():
        raise RenderError(f"no message catalogue for language {lang!r} ({path})")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def catalogue_languages() -> list[str]:
    """Languages shipped as catalogues (``locales/*.yaml``)."""
    folder = resources.files("ppx.rules.messages") / "locales"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def template_kinds() -> list[str]:
    """Every kind with a template pair (``<kind>.txt.j2`` and ``<kind>.html.j2``)."""
    folder = resources.files("ppx.rules.messages") / "templates"
    names = {p.name for p in folder.iterdir()}
    return sorted(
        n[: -len(".txt.j2")]
        for n in names
        if n.endswith(".txt.j2") and not n.startswith("_") and n.replace(".txt.", ".html.") in names
    )


@cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("ppx.rules.messages", "templates"),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def pick_language(customer_locale: str | None, policy: Policy) -> str:
    """The catalogue language for a customer locale ("ja-JP" -> "ja"); else the default."""
    loc = policy.messages.locales
    if customer_locale:
        lang = customer_locale.replace("_", "-").split("-", 1)[0].lower()
        if lang in loc.supported:
            return lang
    return loc.default


def customer_zone(customer: CustomerContext) -> tzinfo:
    """The customer's time zone: the IANA name if valid, else the fixed UTC offset."""
    if customer.time_zone:
        try:
            return ZoneInfo(customer.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise RenderError(
                f"customer {customer.customer_id}: unknown time zone {customer.time_zone!r}"
            ) from None
    return timezone(timedelta(minutes=customer.utc_offset_minutes))


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


class _Words:
    """Catalogue look-ups for one language, raising on anything missing."""

    def __init__(self, lang: str, zone: tzinfo, currency: str):
        self.lang = lang
        self.cat = _catalogue(lang)
        self.locale = _locale(lang)
        self.zone = zone
        self.currency = currency

    def _lookup(self, key: str) -> Any:
        node: Any = self.cat
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise RenderError(f"catalogue {self.lang}.yaml has no key {key!r}")
            node = node[part]
        return node

    def _fill(self, key: str, pattern: str, values: dict) -> str:
        needed = {f for _, f, _, _ in string.Formatter().parse(pattern) if f}
        missing = sorted(needed - set(values))
        if missing:
            raise RenderError(f"{self.lang}.yaml {key!r} needs {missing}; not given")
        return pattern.format(**{k: values[k] for k in needed})

    def tr(self, key: str, **values: Any) -> str:
        pattern = self._lookup(key)
        if isinstance(pattern, dict):
            raise RenderError(f"{self.lang}.yaml {key!r} is a plural; use trn(key, count)")
        return self._fill(key, str(pattern), values)

    def trn(self, key: str, count: int, **values: Any) -> str:
        forms = self._lookup(key)
        if not isinstance(forms, dict):
            raise RenderError(f"{self.lang}.yaml {key!r} is not a plural mapping")
        form = self.locale.plural_form(abs(int(count)))
        if form not in forms:
            raise RenderError(f"{self.lang}.yaml {key!r} has no plural form {form!r}")
        return self._fill(key, str(forms[form]), {**values, "count": self.number(count)})

    def number(self, n: float) -> str:
        return format_decimal(n, locale=self.locale)

    def money(self, amount: float) -> str:
        return format_currency(amount, self.currency, locale=self.locale)

    def day(self, value: date | datetime | str | None) -> str:
        """A calendar date in the customer's language; datetimes are moved to their zone."""
        if value is None:
            raise RenderError("a date the message shows is missing")
        if isinstance(value, str):
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        if isinstance(value, datetime):
            value = self._local(value).date()
        return format_date(value, format="long", locale=self.locale)

    def moment(self, value: datetime | str) -> str:
        """A date and time in the customer's language and time zone."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return format_datetime(self._local(value), format="medium", locale=self.locale)

    def _local(self, value: datetime) -> datetime:
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)  # naive times are UTC
        return aware.astimezone(self.zone)


def _context(
    message_type: str,
    content: dict,
    customer: CustomerContext,
    policy: Policy,
    brand: str,
    loyalty: LoyaltyView | None,
    links: dict[str, str] | None,
) -> tuple[str, str, dict]:
    """(template, language, Jinja context) of one message: shared by every channel."""
    template = policy.messages.template_for(message_type)
    lang = pick_language(customer.locale, policy)
    words = _Words(lang, customer_zone(customer), policy.currency)
    if template in LOYALTY_KINDS and loyalty is None:
        raise RenderError(
            f"{message_type} shows the points balance: pass loyalty (balance, next reward)"
        )
    ctx = {
        **content,
        "kind": message_type,
        "brand": brand,
        "lang": lang,
        "loyalty": loyalty,
        "links": links or {},
        "tr": words.tr,
        "trn": words.trn,
        "day": words.day,
        "moment": words.moment,
        "money": words.money,
        "number": words.number,
    }
    return template, lang, ctx


def render(
    message_type: str,
    content: dict,
    customer: CustomerContext,
    policy: Policy,
    *,
    brand: str = "ppx",
    loyalty: LoyaltyView | None = None,
    links: dict[str, str] | None = None,
) -> Rendered:
    """Render one message for one customer.

    Args:
        message_type: a catalogue kind; ``policy.messages.templates`` may map it to another
            template (``tier_upgrade`` -> ``tier_change``).
        content: what the decision put in the message (order id, points, dates ...).
        customer: language, time zone and id.
        policy: locales, templates, currency.
        brand: the shop's name, shown in greetings and footers.
        loyalty: balance and next reward; required for loyalty-bearing kinds.
        links: ``unsubscribe`` and ``preferences`` URLs for the footer (email).
    """
    template, lang, ctx = _context(message_type, content, customer, policy, brand, loyalty, links)
    env = _env()
    try:
        txt = env.get_template(f"{template}.txt.j2")
        if "subject" not in txt.blocks:
            raise RenderError(f"template {template}.txt.j2 has no subject block")
        # The subject is the text template's ``subject`` block: one place per kind.
        subject = " ".join("".join(txt.blocks["subject"](txt.new_context(ctx))).split())
        text = _BLANKS.sub("\n\n", txt.render(ctx)).strip() + "\n"
        html = env.get_template(f"{template}.html.j2").render(ctx)
    except TemplateNotFound as err:
        raise RenderError(f"no template {err.name} for message kind {message_type!r}") from None
    except UndefinedError as err:
        raise RenderError(f"{message_type} ({lang}): {err.message}") from None
    return Rendered(subject=subject, text=text, html=html, locale=lang)


@dataclass(frozen=True)
class Short:
    """A message cut down for a text message or a push notification."""

    subject: str
    #: the kind's body block (its own words, without greeting, footer or balance), one
    #: entry per paragraph, whitespace collapsed
    paragraphs: tuple[str, ...]
    locale: str
    #: the SMS opt-out wording (catalogue ``sms.stop``)
    opt_out: str


def render_short(
    message_type: str,
    content: dict,
    customer: CustomerContext,
    policy: Policy,
    *,
    brand: str = "ppx",
    loyalty: LoyaltyView | None = None,
) -> Short:
    """The subject and body paragraphs of a message, from the same templates and catalogue
    as the email (the text template's ``subject`` and ``body`` blocks), for SMS and push."""
    template, lang, ctx = _context(message_type, content, customer, policy, brand, loyalty, {})
    try:
        txt = _env().get_template(f"{template}.txt.j2")
        missing = [b for b in ("subject", "body") if b not in txt.blocks]
        if missing:
            raise RenderError(f"template {template}.txt.j2 has no {' or '.join(missing)} block")
        subject = " ".join("".join(txt.blocks["subject"](txt.new_context(ctx))).split())
        body = "".join(txt.blocks["body"](txt.new_context(ctx)))
    except TemplateNotFound as err:
        raise RenderError(f"no template {err.name} for message kind {message_type!r}") from None
    except UndefinedError as err:
        raise RenderError(f"{message_type} ({lang}): {err.message}") from None
    paragraphs = tuple(
        p for p in (" ".join(chunk.split()) for chunk in re.split(r"\n\s*\n", body)) if p
    )
    opt_out = ctx["tr"]("sms.stop")
    return Short(subject=subject, paragraphs=paragraphs, locale=lang, opt_out=opt_out)


def preferences_page(
    prefs: dict, channel: str, lang: str, brand: str, action: str, saved: bool = False
) -> str:
    """The shopper's preference page for one channel (the footer's link), as HTML."""
    if lang not in catalogue_languages():
        lang = "en"
    words = _Words(lang, UTC, "EUR")
    kinds = [
        {"kind": k, "allowed": v["channels"][channel], "locked": v["locked"]}
        for k, v in prefs["kinds"].items()
        if channel in v["channels"]
    ]
    ctx = {
        "lang": lang,
        "brand": brand,
        "channel": channel,
        "kinds": kinds,
        "action": action,
        "saved": saved,
        "tr": words.tr,
    }
    try:
        return _env().get_template("_preferences_page.html.j2").render(ctx)
    except UndefinedError as err:
        raise RenderError(f"preference page ({lang}): {err.message}") from None
