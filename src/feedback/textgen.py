"""Write review and return-comment text for a simulated world, with a ground truth.

The behaviour (who reviews, the rating, who returns and why, late deliveries) is
simulated first; this module then writes what each customer says about it. A text's
theme is drawn from weights that depend on what happened: a late delivery makes
``late_delivery`` likely, a rating of 1-2 on coffee makes ``stale_beans`` likely, a
``wrong_item`` return reason makes ``wrong_item`` likely, and so on (see
``docs/feedback.md`` for the table). Three *emerging* themes are planted on one product
each: before their start day they are absent for that product, afterwards their weight
ramps up over four weeks — the growth the alerts must find.

Everything is vectorised (one draw per text, string assembly by array indexing) and uses
its own random stream, so adding text never changes the other tables of a world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.feedback import themes as T

#: Stream id mixed into the world seed so text draws never shift the behaviour draws.
TEXT_STREAM = 20_2611
LANGUAGE_P = {"en": 0.84, "ja": 0.08, "ru": 0.08}
NO_COMMENT_P = 0.3  # returns filed without a comment
NOISE_WEIGHT = 1.2
EMERGING_WEIGHT = 5.0
EMERGING_RAMP_DAYS = 28.0


@dataclass(frozen=True)
class EmergingTheme:
    """A theme that starts on one product mid-period (a new defect, a bad batch)."""

    theme: str
    category: str
    start_fraction: float  # of the observed period


EMERGING = (
    EmergingTheme("grinder_breaks", "equipment", 0.5),
    EmergingTheme("packaging_leaks", "beans", 0.6),
    EmergingTheme("runs_small", "merch", 0.7),
)


def _customer_language(customer_ids: np.ndarray, seed: int) -> np.ndarray:
    """A fixed language per customer (a customer writes every text in one language)."""
    rng = np.random.default_rng([seed, TEXT_STREAM, 1])
    n = int(customer_ids.max()) + 1 if len(customer_ids) else 1
    langs = np.array(list(LANGUAGE_P))
    per_customer = rng.choice(langs, n, p=list(LANGUAGE_P.values()))
    return per_customer[customer_ids]


def _late_orders(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """order_id -> delivered after the promised day (False when unknown)."""
    orders = tables[C.ORDERS][[C.ORDER_ID, C.PROMISED_DATE]]
    ship = tables[C.SHIPMENTS][[C.ORDER_ID, C.DELIVERED_AT]].drop_duplicates(C.ORDER_ID)
    m = orders.merge(ship, on=C.ORDER_ID, how="left")
    late = m[C.DELIVERED_AT].dt.normalize() > pd.to_datetime(m[C.PROMISED_DATE]).dt.normalize()
    return pd.Series(late.fillna(False).to_numpy(bool), index=m[C.ORDER_ID].to_numpy())


def _pick_emerging(texts: pd.DataFrame) -> list[dict]:
    """The product of each emerging theme: the one in its category with the most texts."""
    t0, t1 = texts["at"].min(), texts["at"].max()
    out = []
    for e in EMERGING:
        counts = texts.loc[texts[C.CATEGORY] == e.category, C.PRODUCT_ID].value_counts()
        if counts.empty:
            continue
        out.append(
            {
                "theme": e.theme,
                C.PRODUCT_ID: int(counts.index[0]),
                "start_at": t0 + (t1 - t0) * e.start_fraction,
            }
        )
    return out


def _theme_weights(texts: pd.DataFrame, emerging: list[dict]) -> np.ndarray:
    """Weights (texts x themes+noise) from what happened to each order."""
    n = len(texts)
    cat = texts[C.CATEGORY].to_numpy()
    is_review = (texts["source"] == "review").to_numpy()
    rating = texts[C.RATING].to_numpy(float)
    reason = texts[C.REASON].to_numpy(object)
    late = texts["late"].to_numpy(bool)
    low = is_review & (rating <= 2)
    mid = is_review & (rating == 3)
    high = is_review & (rating >= 4)
    ret = ~is_review
    w = np.zeros((n, len(T.THEMES) + 1))
    for k, theme in enumerate(T.THEMES):
        fits = np.isin(cat, theme.categories)
        if theme.name == "stale_beans":
            wk = (
                3.0 * low + 1.0 * mid + 2.0 * (ret & np.isin(reason, ["not_as_described", "other"]))
            )
        elif theme.name == "great_taste":
            wk = 3.0 * high
        elif theme.name == "grinder_breaks":
            wk = 0.6 * low + 1.0 * (ret & np.isin(reason, ["damaged", "other"]))
        elif theme.name == "easy_to_use":
            wk = 3.0 * high
        elif theme.name == "packaging_leaks":
            wk = 0.3 * low + 0.8 * (ret & (reason == "damaged"))
        elif theme.name == "runs_small":
            wk = 2.5 * (low | mid) + 3.0 * (
                ret & np.isin(reason, ["not_as_described", "changed_mind"])
            )
        elif theme.name == "late_delivery":
            wk = 5.0 * late * ~high
        elif theme.name == "wrong_item":
            wk = 8.0 * (ret & (reason == "wrong_item"))
        else:  # pragma: no cover - every theme is listed above
            raise ValueError(theme.name)
        w[:, k] = wk * fits
    w[:, -1] = NOISE_WEIGHT + 1.0 * mid
    at = texts["at"].to_numpy()
    pid = texts[C.PRODUCT_ID].to_numpy()
    for e in emerging:
        k = T.THEME_NAMES.index(e["theme"])
        days = (at - np.datetime64(e["start_at"])) / np.timedelta64(1, "D")
        ramp = np.clip(days / EMERGING_RAMP_DAYS, 0.0, 1.0) * (days >= 0)
        target = pid == e[C.PRODUCT_ID]
        # Complaints come from unhappy customers: the new defect lands on low ratings
        # and returns, barely on 5-star reviews.
        mood = np.where(high, 0.15, 1.0)
        w[:, k] = np.where(target, w[:, k] * (days >= 0) + EMERGING_WEIGHT * ramp * mood, w[:, k])
    return w


def _draw(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One categorical draw per row (inverse CDF, vectorised)."""
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    return (u[:, None] > cdf).sum(axis=1).clip(0, weights.shape[1] - 1)


def _phrase_table(pick) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten per-(group, language) phrase lists into one array plus offsets/counts."""
    groups = list(T.THEMES) + [None]
    flat: list[str] = []
    offset = np.zeros((len(groups), len(T.LANGUAGES)), dtype=np.int64)
    count = np.zeros_like(offset)
    for g, theme in enumerate(groups):
        for j, lang in enumerate(T.LANGUAGES):
            phrases = pick(theme, lang)
            offset[g, j], count[g, j] = len(flat), len(phrases)
            flat.extend(phrases)
    return np.array(flat, dtype=object), offset, count


def _choose(table, group: np.ndarray, lang: np.ndarray, u: np.ndarray) -> np.ndarray:
    flat, offset, count = table
    c = count[group, lang]
    return flat[offset[group, lang] + np.minimum((u * c).astype(np.int64), c - 1)]


def _simple_table(d: dict[str, tuple[str, ...]]):
    flat: list[str] = []
    offset = np.zeros(len(T.LANGUAGES), dtype=np.int64)
    count = np.zeros_like(offset)
    for j, lang in enumerate(T.LANGUAGES):
        offset[j], count[j] = len(flat), len(d[lang])
        flat.extend(d[lang])
    return np.array(flat, dtype=object), offset, count


def _choose_simple(table, lang: np.ndarray, u: np.ndarray) -> np.ndarray:
    flat, offset, count = table
    c = count[lang]
    return flat[offset[lang] + np.minimum((u * c).astype(np.int64), c - 1)]


def _sentence_case(s: pd.Series) -> pd.Series:
    return s.str[:1].str.upper() + s.str[1:]


def compose_texts(
    theme_idx: np.ndarray, lang_idx: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Title and body for each (theme, language); theme index len(THEMES) means noise."""
    n = len(theme_idx)
    cores = _phrase_table(lambda t, lang: T.NOISE_TEXTS[lang] if t is None else t.cores[lang])
    titles = _phrase_table(lambda t, lang: T.NOISE_TITLES[lang] if t is None else t.titles[lang])
    core = pd.Series(_choose(cores, theme_idx, lang_idx, rng.random(n)))
    opener = pd.Series(_choose_simple(_simple_table(T.OPENERS), lang_idx, rng.random(n)))
    closers = _phrase_table(lambda t, lang: T.CLOSERS[0 if t is None else t.polarity][lang])
    closer = pd.Series(_choose(closers, theme_idx, lang_idx, rng.random(n)))
    body = opener + core.where(opener != "", _sentence_case(core)) + closer
    # Surface variation real customers produce: all lower case, shouting, doubled "!".
    u = rng.random(n)
    body = body.where(u > 0.12, body.str.lower())
    body = body.where((u < 0.12) | (u > 0.16), body.str.upper())
    title = pd.Series(_choose(titles, theme_idx, lang_idx, rng.random(n)))
    return title.to_numpy(object), body.to_numpy(object)


def write_feedback_text(tables: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """Add text columns to ``reviews`` and ``returns``; returns the truth tables.

    Mutates ``tables`` in place (the two tables gain ``title``/``body`` and ``comment``)
    and returns ``{truth_feedback, truth_feedback_emerging}``.
    """
    rng = np.random.default_rng([seed, TEXT_STREAM])
    rv, rt = tables[C.REVIEWS], tables[C.RETURNS]
    late = _late_orders(tables)
    cats = tables[C.PRODUCTS].set_index(C.PRODUCT_ID)[C.CATEGORY]
    texts = pd.concat(
        [
            pd.DataFrame(
                {
                    "source": "review",
                    "text_id": rv[C.REVIEW_ID].to_numpy(),
                    C.CUSTOMER_ID: rv[C.CUSTOMER_ID].to_numpy(),
                    C.PRODUCT_ID: rv[C.PRODUCT_ID].to_numpy(),
                    C.ORDER_ID: rv[C.ORDER_ID].to_numpy(),
                    "at": rv[C.CREATED_AT].to_numpy(),
                    C.RATING: rv[C.RATING].to_numpy(float),
                    C.REASON: None,
                }
            ),
            pd.DataFrame(
                {
                    "source": "return",
                    "text_id": rt[C.RETURN_ID].to_numpy(),
                    C.CUSTOMER_ID: rt[C.CUSTOMER_ID].to_numpy(),
                    C.PRODUCT_ID: rt[C.PRODUCT_ID].to_numpy(),
                    C.ORDER_ID: rt[C.ORDER_ID].to_numpy(),
                    "at": rt[C.REQUESTED_AT].to_numpy(),
                    C.RATING: np.nan,
                    C.REASON: rt[C.REASON].to_numpy(object),
                }
            ),
        ],
        ignore_index=True,
    )
    texts[C.CATEGORY] = cats.reindex(texts[C.PRODUCT_ID]).to_numpy()
    texts["late"] = late.reindex(texts[C.ORDER_ID]).fillna(False).to_numpy(bool)
    emerging = _pick_emerging(texts)
    w = _theme_weights(texts, emerging)
    theme_idx = _draw(w, rng.random(len(texts)))
    lang = _customer_language(texts[C.CUSTOMER_ID].to_numpy(), seed)
    lang_idx = pd.Index(T.LANGUAGES).get_indexer(lang)
    title, body = compose_texts(theme_idx, lang_idx, rng)
    names = np.array([*T.THEME_NAMES, T.NOISE], dtype=object)
    is_rev = (texts["source"] == "review").to_numpy()
    rv[C.REVIEW_TITLE] = np.where(rng.random(is_rev.sum()) < 0.8, title[is_rev], None)
    rv[C.REVIEW_BODY] = body[is_rev]
    comment = np.where(rng.random((~is_rev).sum()) < NO_COMMENT_P, None, body[~is_rev])
    rt[C.RETURN_COMMENT] = comment
    has_text = np.r_[np.ones(is_rev.sum(), bool), pd.notna(comment)]
    theme = np.where(has_text, names[theme_idx], None)
    truth = pd.DataFrame(
        {
            C.SOURCE: texts["source"].to_numpy(),
            C.TEXT_ID: texts["text_id"].to_numpy(np.int64),
            C.PRODUCT_ID: texts[C.PRODUCT_ID].to_numpy(np.int64),
            C.CREATED_AT: texts["at"].to_numpy(),
            C.LANGUAGE: lang,
            C.THEME: theme,
        }
    )[has_text].reset_index(drop=True)
    emerging_df = pd.DataFrame(emerging, columns=[C.THEME, C.PRODUCT_ID, "start_at"]).rename(
        columns={"start_at": C.STARTED_AT}
    )
    return {C.TRUTH_FEEDBACK: truth, C.TRUTH_FEEDBACK_EMERGING: emerging_df}
