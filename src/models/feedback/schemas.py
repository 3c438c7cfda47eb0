"""The feedback endpoint's request and response."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from ppx.models.http import RequestModel, ResponseModel

#: The one request example (docs, warm-up, tests, load generator).
REQUEST_EXAMPLE = {"text": "The grinder broke after three weeks, very disappointed."}

Text = Annotated[str, Field(min_length=1, max_length=5000)]


class FeedbackRequest(RequestModel):
    """A review (title and body joined) or a return comment, in any language."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [REQUEST_EXAMPLE]}, str_max_length=5000
    )

    text: Text


class FeedbackResponse(ResponseModel):
    """The text's theme (empty when it fits none), every theme it fits, its sentiment."""

    theme_id: int = Field(description="Best-fitting theme, -1 when none fits.")
    theme: str = Field(description="The theme's name (its three most distinctive words).")
    theme_words: str = Field(description="All distinctive words of the theme.")
    theme_margin: float = Field(description="How far inside the theme's radius (>= 0 fits).")
    themes: str = Field(description="Every theme the text fits, '; ' separated.")
    p_positive: float = Field(description="Probability the writer is happy.")
    sentiment: str = Field(description="negative, neutral or positive.")
