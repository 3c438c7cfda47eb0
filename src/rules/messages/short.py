"""Text-message and push bodies cut from a message's subject and body paragraphs.

An SMS is billed and split by *segments*: 160 characters of the GSM 03.38 alphabet, or 70
UTF-16 units when any character is outside it (Japanese, Russian, most emoji), and a
longer message is sent as parts of 153 / 67 that the phone joins. So the body is built to
fit one segment: ``"<brand>: "`` (a carrier rule: the sender names itself), then as many
of the kind's body paragraphs as fit (see :func:`sms_body`), else only the subject, then
the opt-out; a subject with the opt-out that is longer than a segment is sent as two. A tracking
link, when the portal is set up, is added before the opt-out even though it makes the
message two segments: for a shipping notice the link is worth the second part.

The opt-out is the wording "Reply STOP to opt out." (catalogue ``sms.stop``), not the
one-click unsubscribe link the email carries. The link is a signed token of ~110
characters, two thirds of a segment, and the providers this sender speaks to stop a
number that replies STOP themselves, as carriers require, so the keyword is both the
shorter and the expected way out of an SMS. The provider's refusal of the next message
to such a number turns SMS off in the preference centre (``ppx messages send``), and the
preference page still turns SMS kinds off per kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ppx.rules.messages.render import Short

# GSM 03.38 basic alphabet (one septet each) and its extension table (escape + one).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

#: characters a push body shows before the lock screen cuts it (iOS shows about 178)
PUSH_BODY_CHARS = 178


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int  # segments the message is sent as


def segments(text: str) -> Segments:
    """How a text message is encoded and into how many segments it is split."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        units = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        return Segments("GSM-7", units, 1 if units <= 160 else math.ceil(units / 153))
    units = len(text.encode("utf-16-le")) // 2
    return Segments("UCS-2", units, 1 if units <= 70 else math.ceil(units / 67))


def _greedy(paragraphs: tuple[str, ...], fits) -> tuple[str, int] | None:
    """The longest run of leading paragraphs that ``fits`` and its length; None if not
    even the first fits."""
    best = None
    for n in range(1, len(paragraphs) + 1):
        words = " ".join(paragraphs[:n])
        if not fits(words):
            break
        best = (words, n)
    return best


def _sentence(subject: str, lang: str) -> str:
    """A subject as a sentence, so the text that follows does not run into it."""
    if not subject or subject[-1] in ".!?。！？":
        return subject
    return subject + ("。" if lang == "ja" else ".")


def sms_body(short: Short, brand: str, link: str | None = None) -> str:
    """``<brand>: <words> [<link>] <opt-out>``, the words fitted to one segment.

    The words are the body's leading paragraphs, or the subject followed by the body's
    later paragraphs when that carries more of them (a delay notice's new estimate fits
    after "Order 5 is running late." but not after the longer apology it opens with),
    else the subject alone.
    """

    def build(words: str, with_link: bool) -> str:
        tail = f" {link}" if with_link and link else ""
        return f"{brand}: {words}{tail} {short.opt_out}"

    def fits(words: str) -> bool:
        return segments(build(words, False)).parts == 1

    subject = _sentence(short.subject, short.locale)
    body = _greedy(short.paragraphs, fits)
    rest = _greedy((subject, *short.paragraphs[1:]), fits)
    if body is not None and (rest is None or body[1] >= rest[1]):
        words = body[0]
    else:
        words = rest[0] if rest is not None else subject
    return build(words, True)


def push_body(short: Short) -> str:
    """The body paragraphs that fit a lock screen; the first one (cut) when none does."""
    words = _greedy(short.paragraphs, lambda w: len(w) <= PUSH_BODY_CHARS)
    if words is not None:
        return words[0]
    if not short.paragraphs:
        return short.subject
    first = short.paragraphs[0]
    return first[: PUSH_BODY_CHARS - 1].rstrip() + "…"
