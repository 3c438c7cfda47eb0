"""SHAP values for any ppx model through the :class:`~ppx.models.base.ExplainableModel` surface.

Why a permutation explainer: every model exposes ``score_features(X) -> scores`` as a
numpy function, whatever network sits behind it (an MLP, a survival head, a two-tower
recommender). ``shap.PermutationExplainer`` needs nothing else, guarantees additivity
(the contributions of one row sum exactly to its score minus the background average) and
is exact for models with at most pairwise interactions after one antithetic permutation.
Its cost is ``rows x max_evals x background`` model evaluations, so all three are capped
here (defaults: 150 rows, 1 antithetic permutation, 50 background rows), which keeps a report to
seconds for the small networks ppx trains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ppx.models.base import ExplainableModel

#: Default caps; a report explains at most this many rows against this many background rows.
DEFAULT_ROWS = 150
#: 50, not 25: with 99 fraud features, two 25-row backgrounds (seeds 0 and 1) picked the
#: same top feature for only 33 % of rows; 50 rows, 43 % (one-off, fraud champion).
DEFAULT_BACKGROUND = 50
DEFAULT_PERMUTATIONS = 1
#: features that say what kind of decision a row is (not a reason for its score); a model
#: can declare its own with a ``context_features`` attribute
DEFAULT_CONTEXT = ("in_transit", "is_claim")


def context_features(model: object) -> list[str]:
    """The model's features that say what kind of decision a row is (a claim or a
    return, checkout or in transit): rows are explained against rows of their own kind."""
    declared = getattr(model, "context_features", None)
    context = set(DEFAULT_CONTEXT if declared is None else declared)
    return [name for name in model.feature_names if name in context]


def check_model(model: object) -> ExplainableModel:
    """Fail early, naming the missing piece, when an object is not explainable."""
    missing = [
        name
        for name in ("feature_names", "features", "score_features", "background")
        if not hasattr(model, name)
    ]
    if missing:
        raise TypeError(
            f"{type(model).__name__} does not implement ppx.models.base.ExplainableModel: "
            f"missing {', '.join(missing)}"
        )
    names = list(model.feature_names)
    if not names:
        raise ValueError(f"{type(model).__name__}.feature_names is empty: nothing to explain")
    return model  # type: ignore[return-value]


def align_features(X: pd.DataFrame, feature_names: list[str], what: str = "X") -> pd.DataFrame:
    """Columns in the model's order, as floats; a clear error names absent or non-numeric ones."""
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X), columns=feature_names)
    missing = [c for c in feature_names if c not in X.columns]
    if missing:
        raise ValueError(f"{what} lacks feature column(s) {missing[:8]} expected by the model")
    out = X[feature_names]
    bad = [c for c in feature_names if not pd.api.types.is_numeric_dtype(out[c])]
    if bad:
        raise ValueError(
            f"{what} has non-numeric feature column(s) {bad[:8]}; features must be numbers"
        )
    out = out.astype("float64")
    if out.isna().any().any():
        cols = out.columns[out.isna().any()].tolist()
        raise ValueError(f"{what} has missing values in feature column(s) {cols[:8]}")
    return out.reset_index(drop=True)


def scorer(model: ExplainableModel):
    """``score_features`` wrapped to take any 2-D array and return a flat float64 vector.

    float32 input is what the torch networks expect, so the conversion happens once here.
    """

    def f(A: np.ndarray) -> np.ndarray:
        A = np.asarray(A, dtype=np.float32)
        out = np.asarray(model.score_features(A), dtype=np.float64).reshape(-1)
        if out.shape[0] != A.shape[0]:
            raise ValueError(
                f"score_features returned {out.shape[0]} scores for {A.shape[0]} rows; "
                "it must return one headline score per row"
            )
        return out

    return f


@dataclass
class ShapResult:
    """SHAP values of a sample of rows and what is needed to plot and summarise them."""

    values: np.ndarray  # (rows, features)
    base_value: float  # average score over the background (where contributions start)
    data: pd.DataFrame  # the explained feature rows
    scores: np.ndarray  # the model's score of each explained row
    feature_names: list[str]
    method: str
    seconds: float
    background_rows: int
    extra: dict = field(default_factory=dict)
    #: the same rows in human units, for plots and sentences (defaults to ``data``)
    display: pd.DataFrame | None = None
    #: each row's own starting point when rows of different kinds are explained against
    #: their own kind's background (``base_value`` is then the mean of these)
    base_values: np.ndarray | None = None

    def bases(self) -> np.ndarray:
        """Where each row's contributions start."""
        if self.base_values is not None:
            return self.base_values
        return np.full(len(self.values), self.base_value)

    def shown(self) -> pd.DataFrame:
        """Feature values as people should read them (``display`` if the model gave one)."""
        return self.data if self.display is None else self.display

    def importance(self) -> pd.Series:
        """Mean |SHAP| per feature, largest first: the global importance."""
        imp = pd.Series(np.abs(self.values).mean(axis=0), index=self.feature_names)
        return imp.sort_values(ascending=False)

    def direction(self) -> pd.Series:
        """+1 where a higher feature value tends to raise the score, -1 where it lowers it."""
        out = {}
        for j, name in enumerate(self.feature_names):
            x = self.data[name].to_numpy()
            v = self.values[:, j]
            if np.std(x) == 0 or np.std(v) == 0:
                out[name] = 0.0
            else:
                out[name] = float(np.sign(np.corrcoef(x, v)[0, 1]))
        return pd.Series(out)

    def additivity_error(self) -> float:
        """Largest |sum of contributions + base - score|: 0 up to float error when exact."""
        recon = self.values.sum(axis=1) + self.bases()
        return float(np.max(np.abs(recon - self.scores))) if len(self.scores) else 0.0

    def to_explanation(self, rows=None):
        """A ``shap.Explanation`` for shap's plotting functions."""
        import shap

        idx = slice(None) if rows is None else rows
        return shap.Explanation(
            values=self.values[idx],
            base_values=self.bases()[idx],
            data=self.shown().to_numpy()[idx],
            feature_names=self.feature_names,
        )


def _groups(X: pd.DataFrame, context: list[str]) -> list[np.ndarray]:
    """Row positions of ``X`` per combination of context values (all rows when none)."""
    if not context:
        return [np.arange(len(X))]
    keys = X[context].round(6).astype(str).agg("|".join, axis=1)
    return [np.flatnonzero(keys.to_numpy() == k) for k in keys.unique()]


def match_constants(
    bg: pd.DataFrame, X: pd.DataFrame, min_rows: int = 5, columns: list[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Background rows that agree with ``X`` on the features constant across ``X``.

    Why: a feature that never varies among the explained decisions (every row a checkout
    request, say, while the training sample mixes checkout and in-transit rows) would
    otherwise collect a large SHAP value that only says "these rows differ from the
    background", crowding out the features that separate the decisions. Restricting the
    reference to comparable rows keeps the report about what varies. Constraints are applied
    feature by feature and one that would leave fewer than ``min_rows`` rows is skipped;
    ``columns`` limits the features considered (default: all).
    """
    keep = np.ones(len(bg), dtype=bool)
    used = []
    for c in X.columns if columns is None else columns:
        if X[c].nunique() != 1 or bg[c].nunique() <= 1:
            continue
        narrower = keep & np.isclose(bg[c].to_numpy(), X[c].iloc[0])
        if narrower.sum() >= min_rows:  # constraints that would empty the reference are skipped
            keep, used = narrower, [*used, c]
    if not used:
        return bg, []
    return bg[keep].reset_index(drop=True), used


def compute_shap(
    model: ExplainableModel,
    X: pd.DataFrame,
    background: pd.DataFrame | None = None,
    max_rows: int = DEFAULT_ROWS,
    max_background: int = DEFAULT_BACKGROUND,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    progress: bool = False,
) -> ShapResult:
    """SHAP values of (up to ``max_rows`` of) ``X`` against the model's background.

    Args:
        model: any object implementing ExplainableModel.
        X: feature rows to explain (columns = ``model.feature_names``).
        background: reference rows; defaults to ``model.background()``.
        max_rows: rows of ``X`` explained (a seeded sample when X is larger).
        max_background: rows of background the masker integrates over.
        permutations: antithetic permutations per row; 1 is exact up to pairwise
            interactions, more reduces the variance for deeper interactions.
        seed: fixes the row sample and the permutations.
        progress: show shap's progress bar.
    """
    import shap

    check_model(model)
    names = list(model.feature_names)
    X = align_features(X, names)
    if len(X) == 0:
        raise ValueError("X has no rows to explain")
    if len(X) > max_rows:
        X = X.sample(max_rows, random_state=seed).reset_index(drop=True)
    f = scorer(model)
    started = time.perf_counter()
    p = len(names)
    max_evals = max(1, permutations) * (2 * p + 1)
    values = np.zeros((len(X), p))
    bases = np.zeros(len(X))
    if background is None:
        # Rows of different kinds (claims and returns) are explained against background
        # rows of their own kind, as the API's reason codes are: otherwise "this is a
        # claim" becomes every claim's top reason (it was for fraud: SHAP's top feature
        # matched the fast reason codes on 11 % of rows), which says nothing about why
        # this claim scores higher than other claims.
        full = align_features(model.background(), names, "background()")
        if len(full) == 0:
            raise ValueError("background() returned no rows; SHAP needs a reference sample")
        context = [c for c in context_features(model) if X[c].nunique() > 1]
        fixed = [*context, *(c for c in names if X[c].nunique() == 1)]
        groups = _groups(X, context)
    else:
        full, context, fixed = align_features(background, names, "background"), [], []
        groups = [np.arange(len(X))]
    constant: set[str] = set()
    bg_rows = 0
    unmatched = 0  # rows of a kind with too few background rows of its own
    for rows in groups:
        Xg = X.iloc[rows]
        bg = full
        if fixed:
            bg, used = match_constants(full, Xg, columns=fixed)
            constant.update(used)
            if not set(context) <= set(used):
                unmatched += len(rows)
        if len(bg) > max_background:
            bg = bg.sample(max_background, random_state=seed).reset_index(drop=True)
        bg_rows = max(bg_rows, len(bg))
        masker = shap.maskers.Independent(bg.to_numpy(dtype=np.float64), max_samples=len(bg))
        explainer = shap.PermutationExplainer(f, masker, feature_names=names, seed=seed)
        expl = explainer(Xg.to_numpy(dtype=np.float64), max_evals=max_evals, silent=not progress)
        values[rows] = np.asarray(expl.values, dtype=np.float64).reshape(len(Xg), p)
        bases[rows] = np.asarray(expl.base_values, dtype=np.float64).reshape(-1)
    scores = f(X.to_numpy())
    display = None
    to_display = getattr(model, "display_values", None)
    if callable(to_display):
        display = align_features(to_display(X), names, "display_values(X)")
    constant -= set(context)
    method_note = (
        f"; each kind of decision ({', '.join(context)}) against background rows of its own kind"
        + (
            f" ({unmatched} rows of a kind with under 5 such rows: against all rows)"
            if unmatched
            else ""
        )
        if context
        else ""
    ) + (
        f"; background restricted to rows matching the sample on {', '.join(sorted(constant))}"
        if constant
        else ""
    )
    return ShapResult(
        values=values,
        base_value=float(bases.mean()),
        base_values=bases if context else None,
        data=X,
        scores=scores,
        feature_names=names,
        method=(
            f"shap.PermutationExplainer (interventional, {max(1, permutations)} antithetic "
            f"permutation(s), max_evals={max_evals}) against up to {bg_rows} background rows"
            f"{method_note}"
        ),
        seconds=time.perf_counter() - started,
        background_rows=bg_rows,
        display=display,
    )
