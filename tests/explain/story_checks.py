"""Checks every explanation text must pass: shared by the toy and the every-model tests.

A reader must never see a raw input name (``late_2m_capped``, ``wh_n``), a transformed
value (a logarithm, a standardised number) or a direction that disagrees with the
attributions the text was written from.
"""

from __future__ import annotations

import html
import re

import numpy as np
from scipy.stats import spearmanr

from ppx.explain.story import FieldResult, field_direction

#: an identifier-like token: the mark of a raw input or field name in prose
RAW_NAME = re.compile(r"\b[A-Za-z]+[A-Za-z0-9]*_[A-Za-z0-9_]+\b")
TRANSFORM_WORDS = re.compile(r"\b(log|ln|z-score|standardi[sz]ed|code \d+)\b", re.IGNORECASE)
#: sections of the page a product team reads (the method section holds paths and ids)
READ_SECTIONS = ("how-to-read", "summary", "importance", "segments", "changes", "examples")


def visible_texts(page: str) -> list[str]:
    """Sentences and table cells of the sections a reader reads."""
    out = []
    for section in READ_SECTIONS:
        m = re.search(rf'<section id="{section}">(.*?)</section>', page, re.S)
        assert m, f"report has no section {section!r}"
        body = re.sub(r"<figure>.*?</figure>", " ", m.group(1), flags=re.S)
        for chunk in re.split(r"<(?:/?(?:li|td|th|p|h\d|tr)[^>]*)>", body):
            text = html.unescape(re.sub(r"<[^>]+>", " ", chunk)).strip()
            if text:
                out.append(text)
    return out


def category_values(fr: FieldResult) -> set[str]:
    """Names of categories as the data spells them (``wh_north`` is a warehouse's own name,
    not an input name)."""
    return {str(v) for f in fr.fields if fr.kind(f) == "category" for v in fr.originals[f].unique()}


def check_texts(
    texts: list[str], feature_names: list[str], where: str, allowed: set[str] = frozenset()
) -> None:
    """No raw names (other than category values in ``allowed``), no transform words, no
    bare input names."""
    for text in texts:
        for raw in RAW_NAME.finditer(text):
            assert raw.group(0) in allowed, f"{where}: raw name {raw.group(0)!r} in {text!r}"
        word = TRANSFORM_WORDS.search(text)
        assert word is None, f"{where}: transformed value {word.group(0)!r} in {text!r}"
        for name in feature_names:
            if "_" in name:
                found = re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text)
                assert found is None, f"{where}: input {name!r} in {text!r}"


def check_originals(fr: FieldResult, where: str) -> None:
    """Values are in the field's own units: counts whole and >= 0, flags 0/1, shares in
    [0, 1], money and distances >= 0, ratios > 0, categories named."""
    for f in fr.fields:
        kind = fr.kind(f)
        col = fr.originals[f]
        if kind == "category":
            names = col.astype(str)
            assert not names.str.startswith("code ").any(), f"{where}: {f} shows a code"
            continue
        x = col.to_numpy(dtype=np.float64)
        x = x[~np.isnan(x)]
        if kind == "count":
            assert (x >= -1e-6).all() and np.allclose(x, np.round(x), atol=1e-3), (
                f"{where}: {f} is a count but shows {x[:5]}"
            )
        elif kind == "flag":
            assert np.isin(np.round(x, 6), (0.0, 1.0)).all(), f"{where}: flag {f} = {x[:5]}"
        elif kind == "share":
            assert (x >= -1.0 - 1e-6).all() and (x <= 1.0 + 1e-6).all(), f"{where}: {f} {x[:5]}"
        elif kind in ("money", "ratio") or fr.dictionary.fields[f].unit in ("km", "kg", "m"):
            assert (x >= 0).all(), f"{where}: {f} ({kind}) is negative: {x[:5]}"


def check_directions(fr: FieldResult, summary: list[str], table, where: str) -> None:
    """Every stated direction matches the attributions; sentence and table agree."""
    u = fr.units
    cells = dict(zip(table["what"], table["direction"], strict=True))
    for f in fr.fields:
        d = field_direction(fr, f)
        if d is None or d.categorical:
            continue
        x = fr.originals[f].to_numpy(dtype=np.float64)
        v = fr.values[:, fr.fields.index(f)]
        ok = ~np.isnan(x)
        if np.ptp(x[ok]) > 0 and np.ptp(v[ok]) > 0:
            rho = spearmanr(x[ok], v[ok]).statistic
            if abs(rho) > 0.5:  # a clear monotone relation: the stated sign must follow it
                assert d.sign == np.sign(rho), f"{where}: {f} stated {d.sign}, rho {rho:.2f}"
        verb = u.verb(d.sign)
        label = fr.label(f)
        if label in cells and d.sign:
            assert verb in cells[label], f"{where}: table says {cells[label]!r} for {label}"
        for s in summary:
            if s.startswith((f"Higher {label} ", f"When {label} is yes")):
                assert verb in s, f"{where}: sentence {s!r} disagrees with {verb!r}"
                other = u.verb(-d.sign)
                assert other not in s.split(":")[0], f"{where}: {s!r}"


def check_reasons(reasons: list[list[dict]], fr: FieldResult, where: str) -> None:
    """API reasons: labelled fields, original values, verbs that match the sign."""
    u = fr.units
    d = fr.dictionary
    assert any(reasons), f"{where}: no reason codes"
    for row in reasons:
        for r in row:
            assert r["feature"] in d.fields, f"{where}: reason on unknown field {r['feature']}"
            c = r["contribution"]
            assert r["text"].startswith(d.fields[r["feature"]].describe(r["value"]))
            if c:
                assert u.verb(c) in r["text"], f"{where}: {r['text']!r} vs {c:+.4f}"
                assert r["direction"] == ("raises" if c > 0 else "lowers")
    texts = [r["text"] for row in reasons for r in row]
    check_texts(texts, [], f"{where} reasons", category_values(fr))
