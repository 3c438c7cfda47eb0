"""feedback: themes and sentiment in reviews and return comments, by product.

``config`` holds the hyper-parameters, ``train`` fitting, logging, registration and the
promotion gate, ``evaluate`` theme recovery and sentiment metrics, ``pyfunc`` the served
tagger, ``commands`` the CLI. The text mining itself lives in :mod:`ppx.feedback`.

``SPEC`` describes the model for :mod:`ppx.models.registry`. It reads free text, not a
row of named inputs, so it is not tabular: no SHAP report or feature dictionary; its
``explain=true`` reason codes are the words that move the sentiment most.
"""

from ppx.data import columns as C
from ppx.models.feedback.schemas import REQUEST_EXAMPLE, FeedbackRequest, FeedbackResponse
from ppx.models.spec import EndpointSpec, ModelSpec

SPEC = ModelSpec(
    name="feedback",
    reads=(C.REVIEWS, C.RETURNS),
    summary="Feedback mining: themes and sentiment of reviews and return comments.",
    gate_metric="roc_auc",
    greater_is_better=True,
    heads=("feedback",),
    config="ppx.models.feedback.config:FeedbackConfig",
    train="ppx.models.feedback.train:train",
    evaluate="ppx.models.feedback.train:evaluate_registered",
    served_model="ppx.models.feedback.pyfunc:FeedbackPyfunc",
    endpoints=(
        EndpointSpec(
            name="feedback_tag",
            route="/feedback/tag",
            request=FeedbackRequest,
            response=FeedbackResponse,
            example=REQUEST_EXAMPLE,
            doc="Themes and sentiment of one review or return comment.",
        ),
    ),
    explain_candidates="ppx.models.feedback.train:candidate_rows",
    score_words=("p(positive)", "", "texts"),
    test_config="ppx.models.feedback.config:tiny",
    horizon="of the writer being happy with the purchase",
    tabular=False,
    explain_note=(
        "A text has no tabular inputs: explain=true returns the words whose removal moves "
        "p(positive) most (occlusion), and the themes come with their distinctive words "
        "and quotes in the product team's report (ppx train feedback --report)."
    ),
    register_commands="ppx.models.feedback.commands:register",
    demo="ppx.models.feedback.commands:demo",
)
