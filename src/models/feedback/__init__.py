"""feedback: themes and sentiment in reviews and return comments, by product.

``config`` holds the hyper-parameters, ``train`` fitting, logging, registration and the
promotion gate, ``evaluate`` theme recovery and sentiment metrics, ``pyfunc`` the served
tagger, ``commands`` the CLI. The text mining itself lives in :mod:`ppx.feedback`.

``SPEC`` describes the model for :mod:`ppx.models.registry`. It is not listed there
yet: the registry's demo builds a SHAP report for every listed model, and a text
tagger has no tabular features to explain; the CLI registers the commands directly.
"""

from ppx.models.feedback.schemas import REQUEST_EXAMPLE, FeedbackRequest, FeedbackResponse
from ppx.models.spec import EndpointSpec, ModelSpec

SPEC = ModelSpec(
    name="feedback",
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
    register_commands="ppx.models.feedback.commands:register",
    demo="ppx.models.feedback.commands:demo",
)
