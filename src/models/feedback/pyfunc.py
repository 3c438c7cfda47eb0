"""The served feedback model: a review or return comment in, its themes and sentiment out.

Input: a DataFrame with a ``text`` column (one row per text; a review's title and body
joined, or a return comment). Output, one row per text:

================  =================================================================
column            meaning
================  =================================================================
theme_id          the best-fitting theme's id, -1 when the text fits none
theme             its name (its three most distinctive words), empty when none
theme_words       all its distinctive words
theme_margin      cosine distance inside the theme's radius (>= 0 means it fits)
themes            every theme the text fits, ``; `` separated
p_positive        probability the writer is happy (rating-supervised)
sentiment         negative / neutral / positive
================  =================================================================

Artifact: ``feedback_model.json`` (per sentence model: the languages it reads, its
themes, sentiment weights and package version). Each text is routed by the script of
its language to its sentence model (``ppx.feedback.routing``), loaded from its
installed package; theme ids are numbered across the models' themes.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from ppx.feedback.corpus import TEXT
from ppx.feedback.tagger import FeedbackModel

ARTIFACT = "feedback_model"


class FeedbackPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.model = FeedbackModel.load(context.artifacts[ARTIFACT])

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        return self.model.tag(_texts(model_input))

    def reason_codes(self, frame: pd.DataFrame, k: int = 3) -> list[list[dict]]:
        """Per text, the ``k`` words that move p(positive) most (word occlusion)."""
        return self.model.reason_codes(_texts(frame), k)


def _texts(model_input) -> list[str]:
    """The ``text`` column (or a plain sequence of strings), each with some text."""
    if isinstance(model_input, pd.DataFrame):
        if TEXT not in model_input:
            raise ValueError(
                f"feedback input needs a {TEXT!r} column; got {list(model_input.columns)}"
            )
        texts = model_input[TEXT].tolist()
    else:
        texts = list(model_input)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"feedback input rows {bad[:5]} have no text")
    return texts
