"""Top-k reason codes for one request (or a batch), fast enough to ride along an API call.

Method — pairwise-exact occlusion against a few reference rows, one batched model call.
For each of ``m`` reference rows ``b`` (``m = clip(1024 // (2p + 2), 8, 16)`` so a
request costs about 1,000 scored rows; chosen per request from a seeded pool of up to 256
background rows as those agreeing with the request on its context features —
``in_transit``, ``is_claim`` or the model's ``context_features`` — so a checkout request
is compared with checkout rows, a claim with claims) and each feature ``j``::

    leave_j = f(x) - f(x with x_j := b_j)      # what x_j adds on top of the rest of x
    add_j   = f(b with b_j := x_j) - f(b)      # what x_j adds on top of the reference
    contribution_j = mean over b of (leave_j + add_j) / 2

For a model whose features interact at most in pairs this is exactly the interventional
SHAP value (the two one-step paths split every pairwise interaction in half, as Shapley
does); for deeper interactions it is a close approximation. Where ``x_j == b_j`` both
swapped rows are ``x`` and ``b`` themselves and both paths are exactly 0, so only the
differing (reference, feature) pairs get rows, each distinct row is scored once, and all of
a request's rows go through a single ``score_features`` call: at most ``m (2p + 2)`` rows,
in practice a quarter to 70 % of that (median of 100 demo requests: fraud 405 of
1,705, churn 402 of 976, recs 176 of 337, delivery 655 of 969), plus
``model.features(raw)``. The reference rows pool is drawn once per model object and
cached. The reports measure how often the top reason code matches the full SHAP
computation.

Contributions of model inputs are then summed onto the original fields of the model's
feature dictionary (a one-hot group or a log and its "missing" flag is one reason) and
worded by :mod:`ppx.explain.story`, as the reports word them. Output per request: a list
of ``k`` dicts, largest absolute contribution first::

    {"feature": "late_2m", "label": "late deliveries in the last 2 months", "value": 2.0,
     "baseline": 0.0, "contribution": 0.041, "direction": "raises",
     "text": "late deliveries in the last 2 months: 2 — raises the churn risk by 4.1 points"}

``feature`` is the field, ``value`` its original value (a number or a category name),
``baseline`` its typical value in the background (median, or most common category),
``contribution`` the change of the headline score in its own scale (a probability for
churn and fraud, days for delivery; the text says it in points or days).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from ppx.explain.dictionary import FeatureDictionary, for_model, is_text
from ppx.explain.shapley import align_features, check_model, context_features, scorer
from ppx.explain.story import Units, reason_text, units_for

#: reference rows per request: cost grows linearly, accuracy saturates quickly
REFERENCE_ROWS = 16
#: rows scored per request at most: with p features, m = clip(ROW_BUDGET // (2p + 2), 8, 16)
ROW_BUDGET = 1024
MIN_REFERENCES = 8
#: requests scored per model call (bounds memory for large batches)
CHUNK = 64
#: background rows kept to choose each request's references from
POOL = 256

#: per-model caches keyed by id(): model classes that are dataclasses are unhashable, so a
#: WeakKeyDictionary cannot hold them; entries are dropped when the model is collected
_CACHE: dict[int, object] = {}


def _cached(cache: dict[int, object], model, make):
    key = id(model)
    found = cache.get(key)
    if found is not None:
        return found
    value = make()
    try:
        weakref.finalize(model, cache.pop, key, None)
    except TypeError:  # not weak-referenceable: recompute each time rather than leak
        return value
    cache[key] = value
    return value


@dataclass
class References:
    """What the fast path compares a request with (cached per model object)."""

    mean: np.ndarray  # background mean per feature (the "typical" value in the text)
    pool: np.ndarray  # seeded shuffle of background rows, up to POOL rows
    flags: np.ndarray  # context columns a reference must share with the request
    m: int  # reference rows per request


def references(model) -> References:
    """Reference data of a model, cached per model object (background() may be slow)."""
    return _cached(_CACHE, model, lambda: _references(model))


def _references(model) -> References:
    bg = align_features(model.background(), list(model.feature_names), "background()")
    if len(bg) == 0:
        raise ValueError("background() returned no rows; reason codes need a reference")
    p = bg.shape[1]
    m = int(np.clip(ROW_BUDGET // (2 * p + 2), MIN_REFERENCES, REFERENCE_ROWS))
    pool = bg.sample(min(POOL, len(bg)), random_state=0).to_numpy(dtype=np.float64)
    context = set(context_features(model))
    flags = np.array([name in context for name in model.feature_names], dtype=bool)
    return References(bg.mean(axis=0).to_numpy(dtype=np.float64), pool, flags, min(m, len(pool)))


def baseline(model) -> np.ndarray:
    """Background mean of every feature."""
    return references(model).mean


def pick_references(A: np.ndarray, ref: References) -> np.ndarray:
    """Per request, the ``m`` pool rows that agree with it on most context features.

    Why: a checkout request compared with in-transit parcels (or a return with claims)
    would mostly be "explained" by that context; comparing like with like keeps the
    reasons about what differs among comparable decisions. Only context features are
    matched: matching every flag would hide real binary reasons (a late delivery, a
    claim). Ties keep the seeded pool order.
    """
    if not ref.flags.any():
        return np.repeat(ref.pool[None, : ref.m], len(A), axis=0)
    mismatch = (ref.pool[None, :, ref.flags] != A[:, None, ref.flags]).sum(axis=2)
    order = np.argsort(mismatch, axis=1, kind="stable")[:, : ref.m]
    return ref.pool[order]  # (n, m, p)


def _score_distinct(f, rows: np.ndarray) -> np.ndarray:
    """``f(rows)``, scoring each distinct row once.

    Why: a swapped row often repeats (a binary feature swapped to the same value from
    several references gives the same ``x with x_j := b_j``); about a sixth of a fraud
    request's rows are repeats. Rows are compared by their bytes, which is exact.
    """
    rows = np.ascontiguousarray(rows)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if len(first) == len(rows):
        return f(rows)
    return f(rows[first])[inverse.reshape(-1)]


def _chunk_contributions(f, A: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``R`` holds each request's reference rows, shape (n, m, p).

    Only the (request, reference, feature) triples whose values differ are scored: where
    ``x_j == b_j`` the swapped rows *are* ``x`` and ``b``, so both one-step paths are
    exactly 0. Most pairs are equal for models with flags and one-hot groups (about 70 %
    of the fraud model's), so fraud scores a quarter as many rows for the same numbers.
    """
    n, p = A.shape
    m = R.shape[1]
    i, b, j = np.nonzero(A[:, None, :] != R)
    # leave-one-out: x with x_j := b_j; add-one: b with b_j := x_j
    leave = A[i]
    leave[np.arange(len(i)), j] = R[i, b, j]
    add = R[i, b]
    add[np.arange(len(i)), j] = A[i, j]
    s = _score_distinct(f, np.concatenate([A, R.reshape(-1, p), leave, add]))
    fx = s[:n]
    fb = s[n : n + n * m].reshape(n, m)
    s_leave = s[n + n * m : n + n * m + len(i)]
    s_add = s[n + n * m + len(i) :]
    phi = np.zeros((n, m, p))
    phi[i, b, j] = ((fx[i] - s_leave) + (s_add - fb[i, b])) / 2.0
    return phi.mean(axis=1)


def contributions(model, X: pd.DataFrame) -> np.ndarray:
    """Per-feature contributions, shape (rows, features) (see the module docstring)."""
    names = list(model.feature_names)
    return contributions_array(model, align_features(X, names).to_numpy(dtype=np.float64))


def contributions_array(model, A: np.ndarray) -> np.ndarray:
    """:func:`contributions` of a float matrix already in the model's input order."""
    names = list(model.feature_names)
    if len(A) == 0:
        return np.zeros((0, len(names)))
    ref = references(model)
    f = scorer(model)
    return np.concatenate(
        [
            _chunk_contributions(f, A[i : i + CHUNK], pick_references(A[i : i + CHUNK], ref))
            for i in range(0, len(A), CHUNK)
        ]
    )


def reason_codes(
    model, raw_df: pd.DataFrame, k: int = 3, X: pd.DataFrame | None = None, model_name: str = ""
) -> list[list[dict]]:
    """Top-``k`` contributions for each raw request row.

    Args:
        model: an ExplainableModel (the object behind a loaded pyfunc).
        raw_df: raw request rows, as the model's pyfunc ``predict`` takes them.
        k: how many reasons per request.
        X: the request's features if the caller already computed them (serving does, to
            score); skips a second ``model.features(raw_df)``.
        model_name: ``delivery``/``churn``/``fraud``/``recs``, for the wording of ``text``.

    Returns:
        One list per request row, each with up to ``k`` reason dicts (see module doc); an
        empty list for a row whose features could not be built (missing values).
    """
    check_model(model)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    feats = model.features(raw_df) if X is None else X
    names = list(model.feature_names)
    missing = [c for c in names if c not in feats.columns]
    if missing:
        raise ValueError(f"features lack column(s) {missing[:8]} expected by the model")
    # A row the model could not build features for (unknown customer, say) gets no
    # reasons instead of failing the whole batch; its score is NaN in the response too.
    frame = feats if list(feats.columns) == names else feats[names]  # served frames already are
    bad = [c for c, dt in zip(names, frame.dtypes, strict=True) if not is_numeric_dtype(dt)]
    if bad:
        raise ValueError(f"features has non-numeric feature column(s) {bad[:8]}")
    M = frame.to_numpy(dtype=np.float64)
    ok = ~np.isnan(M).any(axis=1)
    C = np.full((len(feats), len(names)), np.nan)
    C[ok] = contributions_array(model, M[ok])
    words = wording(model, model_name)
    F = np.nan_to_num(C) @ words.G  # contributions summed onto the original fields
    originals = words.dictionary.original_arrays(model, np.nan_to_num(M), names)
    columns = [originals[f] for f in words.fields]
    out: list[list[dict]] = []
    order = np.argsort(-np.abs(F), axis=1, kind="stable")[:, :k]
    for i in range(len(feats)):
        reasons = []
        if not ok[i]:
            out.append(reasons)
            continue
        for j in order[i]:
            c = float(F[i, j])
            field = words.fields[j]
            value = columns[j][i]
            value = value if isinstance(value, str) else float(value)
            reasons.append(
                {
                    "feature": field,
                    "label": words.dictionary.fields[field].label,
                    "value": value,
                    "baseline": words.typical[j],
                    "contribution": c,
                    "direction": "raises" if c > 0 else "lowers" if c < 0 else "does not change",
                    "text": reason_text(words.dictionary, field, value, c, words.units),
                }
            )
        out.append(reasons)
    return out


@dataclass
class Wording:
    """A model's fields, grouping matrix, units and typical values (cached per model)."""

    dictionary: FeatureDictionary
    fields: list[str]
    G: np.ndarray
    units: Units
    typical: list  # median (numbers) or most common value (categories) of the background


_WORDS: dict[int, object] = {}


def wording(model, model_name: str = "") -> Wording:
    """The words of a model's reasons, computed once per model object."""
    return _cached(_WORDS, model, lambda: _wording(model, model_name))


def _wording(model, model_name: str) -> Wording:
    d = for_model(model, model_name)
    names = list(model.feature_names)
    fields, G = d.grouping(names)
    bg = align_features(model.background(), names, "background()")
    orig = d.originals(model, bg)
    typical = [
        (str(orig[f].mode().iloc[0]) if is_text(orig[f]) else float(orig[f].median()))
        if len(orig)
        else None
        for f in fields
    ]
    scores = scorer(model)(bg.to_numpy()) if len(bg) else None
    return Wording(d, fields, G, units_for(model, model_name, scores), typical)
