"""The one contract every model package fulfils: a :class:`ModelSpec` named ``SPEC``.

The CLI, tracking, the demo, explanations, the model service, its load generator and the
test fixtures read everything they need about a model from its spec, so adding a model is
its folder plus one line in :mod:`ppx.models.registry`.

Heavy parts of a model (torch networks, the training code, the MLflow pyfunc) are named
by import path (``"ppx.models.delivery.train:train"``) and imported on first use, which
keeps ``ppx --help`` fast; the HTTP schemas are plain pydantic models and are held
directly, because the service builds its routes from them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    import pandas as pd

#: Something importable: ``"package.module:attribute"`` or the object itself.
Ref = str | Callable[..., Any] | type


def resolve(ref: Ref) -> Any:
    """``"package.module:attribute"`` -> the attribute (objects are returned as they are).

    An import error propagates: a model whose code does not import is broken, and every
    caller must say so rather than quietly leave the model out.
    """
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    if not attribute:
        raise ValueError(f"import path {ref!r} must look like 'package.module:attribute'")
    obj: Any = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class TrainResult:
    """What every model's ``train`` returns: the run, the version and the gate's verdict.

    ``version``/``alias`` are None when the model was not registered (``register=False``);
    ``alias`` is ``champion`` only when ``promoted``; ``reason`` is the gate's sentence,
    also stored on the model version's ``ppx.promotion`` tag. ``metrics`` are the run's
    holdout figures (flat ``name -> float``); ``details`` holds model-specific extras
    (per-head tables, the fitted model object) for callers that know the model.
    """

    model: str
    run_id: str | None
    version: str | None
    alias: str | None
    promoted: bool
    reason: str
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """Finite numeric metrics plus ``promoted`` as 0/1 (the demo's summary table)."""
        out = {
            f"{self.model}.{k}": float(v)
            for k, v in self.metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v
        }
        out[f"{self.model}.promoted"] = float(self.promoted)
        return out


def request_frame(requests: list[BaseModel]) -> pd.DataFrame:
    """Validated requests -> the raw-facts frame, in the JSON types the pyfuncs document.

    Unset optional fields are left out (not sent as nulls) so the pyfunc applies its own
    documented defaults exactly as it does for offline callers.
    """
    import pandas as pd

    rows = [r.model_dump(mode="json", exclude={"explain"}, exclude_none=True) for r in requests]
    return pd.DataFrame.from_records(rows)


@dataclass(frozen=True)
class EndpointSpec:
    """One HTTP endpoint a model serves.

    Attributes:
        name: the BentoML API name, ``<model>_<verb>`` (``fraud_claim``).
        route: the HTTP path (``/fraud/claim``).
        request / response: the pydantic models of one item (the service accepts one
            object or a list of them).
        example: THE request example: the request model's OpenAPI example, the load
            generator's body and the tests' request; the service's warm-up request only
            for a model that logged no input example of its own (``serving.warmup``).
        doc: one sentence for the API document.
        columns: constant columns added to the raw-facts frame before the pyfunc sees it
            (fraud's ``kind``: one model, two heads, the route picks the head).
        variants: more named request bodies the load generator sends to this route (a
            parcel in transit for the delivery estimate).
    """

    name: str
    route: str
    request: type[BaseModel]
    response: type[BaseModel]
    example: dict[str, Any]
    doc: str = ""
    columns: Mapping[str, Any] = field(default_factory=dict)
    variants: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.request.model_validate(self.example)  # a wrong example fails at import
        for body in self.variants.values():
            self.request.model_validate(body)

    def to_frame(self, requests: list[BaseModel]) -> pd.DataFrame:
        """Validated requests -> the frame the model's pyfunc scores."""
        frame = request_frame(requests)
        for i, (column, value) in enumerate(self.columns.items()):
            frame.insert(i, column, value)
        return frame

    def examples(self) -> dict[str, dict[str, Any]]:
        """Every named body of this route: the example under ``name``, then variants."""
        return {self.name: dict(self.example), **{k: dict(v) for k, v in self.variants.items()}}


@dataclass(frozen=True)
class ModelSpec:
    """Everything the rest of ppx knows about one model.

    Attributes:
        name: short name (``delivery``): folder, CLI sub-command, MLflow experiment and
            registered model ``ppx-<name>``, route prefix.
        summary: one line for help texts.
        gate_metric: the holdout metric the promotion gate compares with the champion;
            its direction comes from :mod:`ppx.metrics` when the metric is defined there,
            else from ``greater_is_better``.
        heads: the heads the model serves; the gate checks the simple baselines on each.
        config: the hyper-parameter dataclass.
        train: ``train(world_path, cfg=None, register=True, progress=True) -> TrainResult``.
        evaluate: ``evaluate(world_path, alias="champion") -> dict`` of the registered
            model's metrics on the world's holdout.
        served_model: the ``mlflow.pyfunc.PythonModel`` class serving loads.
        endpoints: the HTTP endpoints, each with its schemas and example.
        explain_candidates: ``(tables) -> DataFrame`` of the world rows one request of
            this model corresponds to (the SHAP report samples them).
        explain_requests: optional ``(tables) -> DataFrame`` of ready-made requests in the
            served form, with a ``decision_time`` column, when columns of the candidate
            rows are not enough.
        score_words: (what the headline score is, its unit, what one row is) for reports.
        test_config: ``() -> config``: a tiny configuration that trains in seconds.
        test_world_months: months of simulated history the tiny configuration needs
            (None: the tests' shared tiny world of 12 months is enough).
        register_commands: ``(groups) -> None``: adds the model's CLI commands to the
            ``train``/``tune``/``evaluate``/``bench`` typer groups.
        demo: ``(world_path) -> TrainResult``: the ``make demo`` training call.
        features: the model's :class:`~ppx.explain.dictionary.FeatureDictionary`: a plain
            label, unit and display for every model input (``ppx.models.<name>.features_doc``).
        horizon: what the headline score refers to, said in every explanation
            ("within 30 days", "days from order to doorstep").
        tabular: whether a request is a row of named inputs. The SHAP report, the
            feature dictionary and SHAP reason codes apply to tabular models only; a
            model that reads free text (feedback) sets False, is left out of
            ``ppx explain``, the demo's reports and the explanation tests, and explains
            itself in its own way, said in ``explain_note``.
        explain_note: for a model that is not tabular, one sentence on how its answers
            are explained instead (required then).
        tuning: optional :class:`ppx.tuning.Tuning`: the objective on validation, the best
            trial's config and the default config. With it, ``ppx tune <name>`` runs
            shared studies (``--storage``, ``--study``, ``--workers``, ``--register``).
        reads: the canonical tables the model's training needs rows in. A model that
            needs more than reviews and returns refuses a texts-only store (a reviews
            export imported alone) at once, naming these (``ppx.store_guard``).
    """

    name: str
    summary: str
    gate_metric: str
    heads: tuple[str, ...]
    config: Ref
    train: Ref
    evaluate: Ref
    served_model: Ref
    endpoints: tuple[EndpointSpec, ...]
    explain_candidates: Ref
    test_config: Ref
    register_commands: Ref
    demo: Ref
    explain_requests: Ref | None = None
    greater_is_better: bool | None = None
    test_world_months: int | None = None
    score_words: tuple[str, str, str] = ("model score", "", "rows")
    features: Ref | None = None
    horizon: str = ""
    tabular: bool = True
    explain_note: str = ""
    tuning: Ref | None = None
    reads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.tabular and not self.explain_note:
            raise ValueError(
                f"model {self.name!r} is not tabular: say how it is explained (explain_note)"
            )
        prefix = f"/{self.name}/"
        for e in self.endpoints:
            if not e.route.startswith(prefix) or not e.name.startswith(f"{self.name}_"):
                raise ValueError(
                    f"endpoint {e.name} {e.route} of model {self.name!r} must be named "
                    f"{self.name}_* and routed under {prefix}"
                )

    @property
    def maximize(self) -> bool:
        """Whether a higher gate metric is better."""
        from ppx import metrics

        if self.gate_metric in metrics.METRICS:
            return metrics.direction(self.gate_metric) == "maximize"
        if self.greater_is_better is None:
            raise ValueError(
                f"{self.name}: gate metric {self.gate_metric!r} is not in ppx.metrics; "
                "set greater_is_better"
            )
        return self.greater_is_better

    @property
    def registered_name(self) -> str:
        """The MLflow experiment and registered model: ``ppx-<name>``."""
        return f"ppx-{self.name}"

    def load(self, part: str) -> Any:
        """Import one of the lazily named parts (``spec.load("train")``)."""
        return resolve(getattr(self, part))

    def run_train(self, world_path: Any, **kwargs: Any) -> TrainResult:
        result = self.load("train")(world_path, **kwargs)
        if not isinstance(result, TrainResult):
            raise TypeError(f"{self.name}: train returned {type(result).__name__}, not TrainResult")
        return result

    def feature_dictionary(self) -> Any:
        """The model's FeatureDictionary, or None when it declares none."""
        return None if self.features is None else self.load("features")

    def tiny_config(self) -> Any:
        return self.load("test_config")()
