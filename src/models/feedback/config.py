"""Hyper-parameters of the feedback model (themes, sentiment, alerts).

The clusterer's defaults were chosen on a validation world (seed 11, 5,000 customers),
never on the benchmark world (seed 7); ``docs/feedback.md`` has the sweep.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ppx.feedback.alerts import AlertParams
from ppx.feedback.discover import ThemeParams


@dataclass
class FeedbackConfig:
    #: Sentence model: ``auto`` (the default: each text's language, read from its
    #: script, picks the model that reads it best, MiniLM for English and e5 for
    #: Japanese and Russian; themes per model, see ``ppx.feedback.routing``), or one
    #: model for every text: ``minilm`` (English) or ``e5`` (multilingual).
    embedder: str = "auto"
    themes: ThemeParams = field(default_factory=ThemeParams)
    alerts: AlertParams = field(default_factory=AlertParams)
    #: Most recent share of reviews held out (by time) to score sentiment for the gate.
    holdout_fraction: float = 0.2
    #: Inverse regularisation of the rating-supervised sentiment logistic regression.
    sentiment_c: float = 1.0
    #: p(positive) below / above these reads as negative / positive.
    negative_below: float = 0.35
    positive_above: float = 0.65
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def flat(self) -> dict:
        """Flat ``section.key -> value`` for MLflow params."""
        out = {}
        for k, v in self.to_dict().items():
            if isinstance(v, dict):
                out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                out[k] = v
        return out


def tiny() -> FeedbackConfig:
    """A configuration for tests' tiny worlds (a few hundred texts)."""
    return FeedbackConfig(
        themes=ThemeParams(pca_dim=32, fit_sample=3000, min_cluster_size=8, min_samples=4),
        alerts=AlertParams(recent_weeks=4, baseline_weeks=8),
    )
