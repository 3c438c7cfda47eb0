"""Point-in-time features for the recommender: sequences, time gaps, repeat/due-ness.

Every function takes canonical ``interactions`` (``customer_id``, ``product_id``,
``event_at``, ``event_type`` in ``view``/``purchase``/``renewal``) and a cutoff, and uses
only events strictly before the cutoff, so offline training frames and one online
request are built by the same code and nothing from after the decision moment leaks in.

* :func:`sequence_arrays` / :func:`sequences` - per-user event sequences (item, type,
  time) in compressed (CSR) form or as a list-column frame; the transformer's input.
* :func:`repurchase_intervals` - per product, how long customers take to buy it again,
  learned from same-customer inter-purchase gaps and shrunk toward the global median;
  what the replenishment component calls "due".
* :func:`repeat_features` - for each (customer, product already in the history): count,
  recency, due ratio (days since last purchase / typical interval), active subscription,
  recent view. The repeat component scores these.
* :func:`next_purchases` - evaluation and training targets: the first purchase after a
  cutoff, flagged as a repeat or a new item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ppx.data import columns as C

#: Event type codes fed to the model (0 is padding).
TYPE_CODES: dict[str, int] = {"purchase": 1, "renewal": 2, "view": 3}
PAD = 0
#: Upper edges (days) of the time-gap buckets; bucket 0 is padding/unknown, 1 "first
#: event", then one bucket per interval below. Chosen around replenishment cycles
#: (3-7 weeks) so "due" is representable.
GAP_EDGES_DAYS = np.array(
    [1 / 24, 1.0, 3.0, 7.0, 14.0, 21.0, 28.0, 35.0, 45.0, 60.0, 90.0, 180.0, np.inf]
)
N_GAP_BUCKETS = len(GAP_EDGES_DAYS) + 2
EPOCH = pd.Timestamp("2000-01-01")
#: A subscription counts as active if it renewed this recently.
SUBSCRIBED_WITHIN_DAYS = 45.0
VIEWED_WITHIN_DAYS = 3.0
#: Prior strength (in gaps) pulling a product's interval toward the global median.
INTERVAL_PRIOR = 5.0

REPEAT_FEATURES: list[str] = [
    "log_count",
    "log_days_since",
    "due_ratio",
    "due_closeness",
    "subscribed",
    "viewed_recently",
    "item_repeat_rate",
    "is_last_purchase",
]

REQUIRED = (C.CUSTOMER_ID, C.PRODUCT_ID, C.EVENT_AT, C.EVENT_TYPE)


def check_interactions(df: pd.DataFrame) -> None:
    """Fail with a clear message when the interactions frame is not usable."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"interactions: missing column(s) {missing}; need {list(REQUIRED)}")
    bad = ~df[C.EVENT_TYPE].isin(list(TYPE_CODES))
    if bad.any():
        raise ValueError(
            f"interactions.{C.EVENT_TYPE}: unknown value(s) "
            f"{sorted(map(str, df.loc[bad, C.EVENT_TYPE].unique()))[:5]}; "
            f"allowed {list(TYPE_CODES)}"
        )


def to_days(ts: pd.Series | np.ndarray | pd.Timestamp) -> np.ndarray | float:
    """Timestamps -> float days since :data:`EPOCH` (the model's clock)."""
    if isinstance(ts, pd.Timestamp):
        return (ts - EPOCH) / pd.Timedelta(days=1)
    values = pd.to_datetime(pd.Series(ts)).to_numpy(dtype="datetime64[ns]")
    return (values - EPOCH.to_datetime64()) / np.timedelta64(1, "D")


def as_of(df: pd.DataFrame, cutoff: pd.Timestamp | None) -> pd.DataFrame:
    """Events strictly before the cutoff (all events when cutoff is None)."""
    if cutoff is None:
        return df
    return df[df[C.EVENT_AT] < pd.Timestamp(cutoff)]


def gap_bucket(gap_days: np.ndarray) -> np.ndarray:
    """Time gaps (days) -> bucket ids; NaN (no previous event) -> 1; negatives -> 2."""
    gap = np.asarray(gap_days, dtype=float)
    out = np.searchsorted(GAP_EDGES_DAYS, np.maximum(gap, 0.0), side="right") + 2
    out = np.minimum(out, N_GAP_BUCKETS - 1)
    return np.where(np.isnan(gap), 1, out).astype(np.int64)


@dataclass
class SequenceArrays:
    """Per-user sequences in CSR form: user ``u``'s events are ``offsets[u]:offsets[u+1]``.

    Attributes:
        customer_ids: one id per user, ascending.
        offsets: ``len(customer_ids) + 1`` start offsets.
        items: product ids in time order.
        types: :data:`TYPE_CODES` of each event.
        days: event times in days since :data:`EPOCH`.
    """

    customer_ids: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    types: np.ndarray
    days: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def user_index(self) -> dict[int, int]:
        return {int(c): i for i, c in enumerate(self.customer_ids)}

    def history(self, u: int) -> np.ndarray:
        return self.items[self.offsets[u] : self.offsets[u + 1]]

    def last_days(self) -> np.ndarray:
        """Time of each user's last event (NaN for an empty history)."""
        out = np.full(len(self), np.nan)
        n = self.lengths()
        out[n > 0] = self.days[self.offsets[1:][n > 0] - 1]
        return out

    def subset(self, users: np.ndarray) -> SequenceArrays:
        """The sequences of the given user positions, in that order."""
        users = np.asarray(users, dtype=np.int64)
        starts, ends = self.offsets[users], self.offsets[users + 1]
        n = ends - starts
        idx = np.repeat(starts - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(n.sum())
        return SequenceArrays(
            customer_ids=self.customer_ids[users],
            offsets=np.r_[0, np.cumsum(n)].astype(np.int64),
            items=self.items[idx],
            types=self.types[idx],
            days=self.days[idx],
        )

    def append(self, customer_ids: np.ndarray, items: np.ndarray) -> SequenceArrays:
        """Add one purchase at the end of the given users' sequences (leave-one-out)."""
        pos = self.user_index()
        extra = np.zeros(len(self), dtype=np.int64)
        add_item = np.zeros(len(self), dtype=np.int64)
        for c, it in zip(customer_ids, items, strict=True):
            u = pos[int(c)]
            extra[u] = 1
            add_item[u] = it
        n = self.lengths() + extra
        offsets = np.r_[0, np.cumsum(n)].astype(np.int64)
        total = int(offsets[-1])
        out_items = np.zeros(total, dtype=np.int64)
        out_types = np.full(total, TYPE_CODES["purchase"], dtype=np.int64)
        out_days = np.zeros(total)
        old = np.repeat(offsets[:-1], self.lengths()) + (
            np.arange(len(self.items)) - np.repeat(self.offsets[:-1], self.lengths())
        )
        out_items[old] = self.items
        out_types[old] = self.types
        out_days[old] = self.days
        ends = offsets[1:][extra == 1] - 1
        out_items[ends] = add_item[extra == 1]
        last = self.last_days()[extra == 1]
        out_days[ends] = np.where(np.isnan(last), 0.0, last) + 1e-5
        return SequenceArrays(self.customer_ids, offsets, out_items, out_types, out_days)


def sequence_arrays(
    interactions: pd.DataFrame,
    cutoff: pd.Timestamp | None = None,
    customer_ids: np.ndarray | None = None,
) -> SequenceArrays:
    """Interactions before ``cutoff`` -> :class:`SequenceArrays` (stable time order).

    Args:
        interactions: canonical interactions.
        cutoff: keep events strictly before it (None keeps all).
        customer_ids: if given, the users to return (in this order), with empty
            sequences for users who have no events.
    """
    check_interactions(interactions)
    df = as_of(interactions, cutoff)
    order = np.lexsort((np.arange(len(df)), to_days(df[C.EVENT_AT]), df[C.CUSTOMER_ID].to_numpy()))
    cust = df[C.CUSTOMER_ID].to_numpy()[order]
    items = df[C.PRODUCT_ID].to_numpy(dtype=np.int64)[order]
    types = df[C.EVENT_TYPE].map(TYPE_CODES).to_numpy(dtype=np.int64)[order]
    days = np.asarray(to_days(df[C.EVENT_AT]), dtype=float)[order]
    users, starts = np.unique(cust, return_index=True)
    offsets = np.r_[starts, len(cust)].astype(np.int64)
    seq = SequenceArrays(users.astype(np.int64), offsets, items, types, days)
    if customer_ids is None:
        return seq
    customer_ids = np.asarray(customer_ids, dtype=np.int64)
    pos = np.searchsorted(users, customer_ids)
    found = (pos < len(users)) & (users[np.minimum(pos, len(users) - 1)] == customer_ids)
    # Build by subsetting the found users and inserting empty rows for the others.
    sub = seq.subset(pos[found]) if found.any() else None
    n = np.zeros(len(customer_ids), dtype=np.int64)
    if sub is not None:
        n[found] = sub.lengths()
    offsets = np.r_[0, np.cumsum(n)].astype(np.int64)
    if sub is None:
        e = np.zeros(0, dtype=np.int64)
        return SequenceArrays(customer_ids, offsets, e, e, np.zeros(0))
    return SequenceArrays(customer_ids, offsets, sub.items, sub.types, sub.days)


def sequences(interactions: pd.DataFrame, cutoff: pd.Timestamp | None = None) -> pd.DataFrame:
    """Per-user sequences as a frame: the readable form of :func:`sequence_arrays`.

    Returns one row per customer with list columns ``product_ids``, ``event_types`` and
    ``gap_days`` (days since the previous event, NaN for the first) and ``n_events``.
    """
    seq = sequence_arrays(interactions, cutoff)
    inv_types = {v: k for k, v in TYPE_CODES.items()}
    rows = []
    for u, c in enumerate(seq.customer_ids):
        lo, hi = seq.offsets[u], seq.offsets[u + 1]
        d = seq.days[lo:hi]
        rows.append(
            {
                C.CUSTOMER_ID: int(c),
                "product_ids": seq.items[lo:hi].tolist(),
                "event_types": [inv_types[t] for t in seq.types[lo:hi]],
                "gap_days": np.r_[np.nan, np.diff(d)].tolist(),
                "n_events": int(hi - lo),
            }
        )
    return pd.DataFrame(
        rows, columns=[C.CUSTOMER_ID, "product_ids", "event_types", "gap_days", "n_events"]
    )


def repurchase_intervals(
    interactions: pd.DataFrame, cutoff: pd.Timestamp | None = None
) -> pd.DataFrame:
    """How long customers take to buy each product again, as of ``cutoff``.

    Gaps between consecutive *purchases* (not renewals, which follow a subscription
    calendar, nor views) of the same product by the same customer, longer than a day so
    two lines of one order do not count. Each product's median gap is shrunk toward the
    global median with :data:`INTERVAL_PRIOR` pseudo-gaps, so a product seen repurchased
    twice does not get an extreme cycle.

    Returns:
        Frame indexed by ``product_id`` with ``interval_days``, ``n_gaps`` and
        ``repeat_rate`` (share of the product's buyers who bought it again).
    """
    check_interactions(interactions)
    df = as_of(interactions, cutoff)
    df = df[df[C.EVENT_TYPE] == "purchase"]
    cols = ["interval_days", "n_gaps", "repeat_rate"]
    if df.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name=C.PRODUCT_ID))
    d = pd.DataFrame(
        {
            "c": df[C.CUSTOMER_ID].to_numpy(),
            "p": df[C.PRODUCT_ID].to_numpy(),
            "t": np.asarray(to_days(df[C.EVENT_AT]), dtype=float),
        }
    ).sort_values(["c", "p", "t"], kind="stable")
    same = (d["c"].to_numpy()[1:] == d["c"].to_numpy()[:-1]) & (
        d["p"].to_numpy()[1:] == d["p"].to_numpy()[:-1]
    )
    gaps = np.diff(d["t"].to_numpy())
    keep = same & (gaps > 1.0)
    g = pd.DataFrame({"p": d["p"].to_numpy()[1:][keep], "gap": gaps[keep]})
    global_median = float(g["gap"].median()) if len(g) else 30.0
    stats = g.groupby("p")["gap"].agg(["median", "size"])
    buyers = d.groupby(["p", "c"]).size()
    rate = (buyers >= 2).groupby(level="p").mean()
    out = pd.DataFrame(index=pd.Index(sorted(d["p"].unique()), name=C.PRODUCT_ID))
    n = stats["size"].reindex(out.index).fillna(0.0)
    med = stats["median"].reindex(out.index).fillna(global_median)
    out["interval_days"] = (n * med + INTERVAL_PRIOR * global_median) / (n + INTERVAL_PRIOR)
    out["n_gaps"] = n.astype(np.int64)
    out["repeat_rate"] = rate.reindex(out.index).fillna(0.0).astype(float)
    out.attrs["global_interval_days"] = global_median
    return out


def repeat_features(
    interactions: pd.DataFrame,
    now: pd.Timestamp | pd.Series,
    intervals: pd.DataFrame,
) -> pd.DataFrame:
    """Features of every (customer, product in the customer's history) as of ``now``.

    Args:
        interactions: canonical interactions (events at or after ``now`` are ignored).
        now: the decision moment, one timestamp for everyone or a Series indexed by
            ``customer_id``.
        intervals: :func:`repurchase_intervals` computed on training data.

    Returns:
        One row per (customer_id, product_id) bought, renewed or viewed before ``now``,
        with :data:`REPEAT_FEATURES` plus ``days_since`` (raw) for reporting.
    """
    check_interactions(interactions)
    if isinstance(now, pd.Series):
        now_c = now.reindex(interactions[C.CUSTOMER_ID].to_numpy()).to_numpy()
        df = interactions[interactions[C.EVENT_AT].to_numpy() < now_c]
        now_days = pd.Series(
            np.asarray(to_days(now), dtype=float), index=now.index.to_numpy(dtype=np.int64)
        )
    else:
        df = as_of(interactions, now)
        now_days = None
    t = np.asarray(to_days(df[C.EVENT_AT]), dtype=float)
    kind = df[C.EVENT_TYPE].to_numpy()
    bought = kind != "view"
    d = pd.DataFrame(
        {
            C.CUSTOMER_ID: df[C.CUSTOMER_ID].to_numpy(),
            C.PRODUCT_ID: df[C.PRODUCT_ID].to_numpy(),
            "tb": np.where(bought, t, np.nan),
            "tr": np.where(kind == "renewal", t, np.nan),
            "tv": np.where(kind == "view", t, np.nan),
            "nb": bought.astype(np.int64),
        }
    )
    g = d.groupby([C.CUSTOMER_ID, C.PRODUCT_ID], sort=True).agg(
        count=("nb", "sum"),
        last_buy=("tb", "max"),
        last_renew=("tr", "max"),
        last_view=("tv", "max"),
    )
    g = g.reset_index()
    # Last purchase of each customer (any product) marks the "just bought" item.
    last_any = g.groupby(C.CUSTOMER_ID)["last_buy"].transform("max")
    if now_days is None:
        nd = np.full(len(g), float(to_days(pd.Timestamp(now))))
    else:
        nd = now_days.reindex(g[C.CUSTOMER_ID].to_numpy()).to_numpy()
    glob = float(intervals.attrs.get("global_interval_days", 30.0))
    iv = intervals["interval_days"].reindex(g[C.PRODUCT_ID].to_numpy()).fillna(glob).to_numpy()
    rate = intervals["repeat_rate"].reindex(g[C.PRODUCT_ID].to_numpy()).fillna(0.0).to_numpy()
    since = nd - g["last_buy"].to_numpy()
    ratio = np.clip(np.nan_to_num(since / iv, nan=0.0), 0.0, 5.0)
    has_buy = ~np.isnan(since)
    out = pd.DataFrame(
        {
            C.CUSTOMER_ID: g[C.CUSTOMER_ID].to_numpy(),
            C.PRODUCT_ID: g[C.PRODUCT_ID].to_numpy(),
            "log_count": np.log1p(g["count"].to_numpy()),
            "log_days_since": np.where(has_buy, np.log1p(np.maximum(since, 0.0)), 0.0),
            "due_ratio": np.where(has_buy, ratio, 0.0),
            "due_closeness": np.where(has_buy, np.exp(-(((ratio - 1.0) / 0.3) ** 2)), 0.0),
            "subscribed": (nd - g["last_renew"].to_numpy() <= SUBSCRIBED_WITHIN_DAYS).astype(float),
            "viewed_recently": (nd - g["last_view"].to_numpy() <= VIEWED_WITHIN_DAYS).astype(float),
            "item_repeat_rate": rate,
            "is_last_purchase": (g["last_buy"].to_numpy() == last_any.to_numpy()).astype(float),
            "days_since": since,
        }
    )
    return out


def next_purchases(
    interactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    horizon_days: float,
) -> pd.DataFrame:
    """The first one-off purchase of each customer in ``[cutoff, cutoff + horizon)``.

    Renewals are not targets (the subscription ships them anyway) and views are not
    purchases. ``is_repeat`` says whether the customer bought or renewed the product
    before the cutoff, so repeat and new-item hits can be reported separately.
    """
    check_interactions(interactions)
    cutoff = pd.Timestamp(cutoff)
    end = cutoff + pd.Timedelta(days=horizon_days)
    w = interactions[
        (interactions[C.EVENT_AT] >= cutoff)
        & (interactions[C.EVENT_AT] < end)
        & (interactions[C.EVENT_TYPE] == "purchase")
    ]
    w = w.sort_values([C.CUSTOMER_ID, C.EVENT_AT], kind="stable")
    first = w.drop_duplicates(C.CUSTOMER_ID, keep="first")
    hist = as_of(interactions, cutoff)
    hist = hist[hist[C.EVENT_TYPE] != "view"]
    seen = pd.MultiIndex.from_arrays([hist[C.CUSTOMER_ID], hist[C.PRODUCT_ID]])
    key = pd.MultiIndex.from_arrays([first[C.CUSTOMER_ID], first[C.PRODUCT_ID]])
    return pd.DataFrame(
        {
            C.CUSTOMER_ID: first[C.CUSTOMER_ID].to_numpy(),
            C.PRODUCT_ID: first[C.PRODUCT_ID].to_numpy(),
            C.EVENT_AT: first[C.EVENT_AT].to_numpy(),
            "is_repeat": key.isin(seen),
        }
    )


def repeat_features_arrays(
    items: np.ndarray,
    types: np.ndarray,
    days: np.ndarray,
    now_days: float,
    interval_of: np.ndarray,
    rate_of: np.ndarray,
    global_interval: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One user's :func:`repeat_features` in plain numpy (the online fast path).

    Args:
        items, types, days: the user's events (any order), already before ``now_days``.
        now_days: the decision moment in days since :data:`EPOCH`.
        interval_of, rate_of: lookup arrays indexed by ``items`` values (NaN = unknown).
        global_interval: interval for items without a learned one.

    Returns:
        (unique item ids, feature matrix with :data:`REPEAT_FEATURES` columns), equal to
        the rows :func:`repeat_features` gives for this user.
    """
    _, uniq, X = repeat_features_many(
        np.zeros(len(items), dtype=np.int64),
        items,
        types,
        days,
        now_days,
        interval_of,
        rate_of,
        global_interval,
    )
    return uniq, X


def repeat_features_many(
    owner: np.ndarray,
    items: np.ndarray,
    types: np.ndarray,
    days: np.ndarray,
    now_days: float,
    interval_of: np.ndarray,
    rate_of: np.ndarray,
    global_interval: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`repeat_features_arrays` of many users at once (the nightly job's path).

    Args:
        owner: each event's user as a small non-negative integer (its position in the
            caller's list of users); the other arguments as in
            :func:`repeat_features_arrays`, the events of every user concatenated.

    Returns:
        (user of each row, item of each row, feature matrix): rows sorted by user, then
        item, each user's rows equal to what :func:`repeat_features_arrays` gives it.
    """
    owner = np.asarray(owner, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    width = int(items.max()) + 1 if len(items) else 1
    pair, inv = np.unique(owner * width + items, return_inverse=True)
    user, uniq = np.divmod(pair, width)
    n = len(pair)
    bought = types != TYPE_CODES["view"]
    count = np.bincount(inv, weights=bought, minlength=n)
    last_buy = np.full(n, -np.inf)
    np.maximum.at(last_buy, inv[bought], days[bought])
    ren = types == TYPE_CODES["renewal"]
    last_ren = np.full(n, -np.inf)
    np.maximum.at(last_ren, inv[ren], days[ren])
    vw = types == TYPE_CODES["view"]
    last_view = np.full(n, -np.inf)
    np.maximum.at(last_view, inv[vw], days[vw])
    has_buy = np.isfinite(last_buy)
    iv = interval_of[uniq]
    iv = np.where(np.isnan(iv), global_interval, iv)
    rate = np.nan_to_num(rate_of[uniq], nan=0.0)
    since = np.where(has_buy, now_days - last_buy, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.clip(np.nan_to_num(since / iv, nan=0.0), 0.0, 5.0)
    # each user's latest purchase over all its items (-inf: the user bought nothing)
    last_any = np.full(int(user.max()) + 1 if n else 0, -np.inf)
    np.maximum.at(last_any, user[has_buy], last_buy[has_buy])
    X = np.column_stack(
        [
            np.log1p(count),
            np.where(has_buy, np.log1p(np.maximum(np.nan_to_num(since), 0.0)), 0.0),
            np.where(has_buy, ratio, 0.0),
            np.where(has_buy, np.exp(-(((ratio - 1.0) / 0.3) ** 2)), 0.0),
            (now_days - last_ren <= SUBSCRIBED_WITHIN_DAYS).astype(float),
            (now_days - last_view <= VIEWED_WITHIN_DAYS).astype(float),
            rate,
            (has_buy & (last_buy == last_any[user])).astype(float),
        ]
    )
    return user, uniq, X


#: Per-product theme rates as item features (``item_theme_rates``): what customers wrote
#: about a product before the decision moment.
ITEM_THEME_FEATURES: list[str] = [
    "item_negative_theme_rate",
    "item_negative_theme_rate_90d",
    "item_mean_p_positive",
]
#: Pseudo-texts pulling a product's rates toward the catalogue's (a product with two
#: texts does not get a rate of 0 or 1).
THEME_RATE_PRIOR = 20.0
THEME_RATE_WINDOW_DAYS = 90.0


def item_theme_rates(
    tagged: pd.DataFrame,
    cutoff: pd.Timestamp,
    product_ids: np.ndarray,
    prior: float = THEME_RATE_PRIOR,
    window_days: float = THEME_RATE_WINDOW_DAYS,
) -> pd.DataFrame:
    """:data:`ITEM_THEME_FEATURES` of each product as of ``cutoff`` (texts strictly before).

    Args:
        tagged: one row per review or return comment with ``product_id``,
            ``created_at``, ``negative`` (the text carries a negative theme) and
            ``p_positive`` (its sentiment), e.g. from ``ppx.feedback.recs_lift.tag_corpus``.
        cutoff: the decision moment.
        product_ids: the products to describe (products without texts get the
            catalogue's rates).
        prior: pseudo-texts at the catalogue rate added to every product.
        window_days: the recent window of ``item_negative_theme_rate_90d``.

    Returns:
        Frame indexed by ``product_id`` with the :data:`ITEM_THEME_FEATURES` columns.
    """
    for col in (C.PRODUCT_ID, C.CREATED_AT, "negative", "p_positive"):
        if col not in tagged:
            raise ValueError(f"tagged texts: missing column {col!r}")
    cutoff = pd.Timestamp(cutoff)
    past = tagged[tagged[C.CREATED_AT] < cutoff]
    recent = past[past[C.CREATED_AT] >= cutoff - pd.Timedelta(days=window_days)]
    idx = pd.Index(np.asarray(product_ids, dtype=np.int64), name=C.PRODUCT_ID)

    def shrunk(frame: pd.DataFrame, col: str, default: float) -> pd.Series:
        glob = float(frame[col].mean()) if len(frame) else default
        g = frame.groupby(C.PRODUCT_ID)[col].agg(["sum", "size"]).reindex(idx).fillna(0.0)
        return (g["sum"] + prior * glob) / (g["size"] + prior)

    neg_all = past.assign(negative=past["negative"].astype(float))
    neg_recent = recent.assign(negative=recent["negative"].astype(float))
    return pd.DataFrame(
        {
            "item_negative_theme_rate": shrunk(neg_all, "negative", 0.0),
            "item_negative_theme_rate_90d": shrunk(neg_recent, "negative", 0.0),
            "item_mean_p_positive": shrunk(past, "p_positive", 0.5),
        },
        index=idx,
    )
