"""The registry of models: one line per model, read by every other layer of ppx.

Adding a model is its folder under ``src/models/`` (exporting ``SPEC``, a
:class:`~ppx.models.spec.ModelSpec`) plus one line in :data:`MODELS`. The CLI, tracking,
the demo, explanations, the model service, the load generator and the test fixtures all
iterate :func:`specs`.

A listed model whose package fails to import is an error, raised to whoever asked: a
broken model must never quietly disappear from the CLI, the service or the tests.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from ppx.models.spec import ModelSpec

#: The models, in the order they are listed everywhere: name -> package exporting SPEC.
MODELS: dict[str, str] = {
    "delivery": "ppx.models.delivery",
    "churn": "ppx.models.churn",
    "fraud": "ppx.models.fraud",
    "recs": "ppx.models.recs",
    "feedback": "ppx.models.feedback",
}

#: Specs added at run time (:func:`register`), e.g. a test's own model.
_EXTRA: dict[str, ModelSpec] = {}


class ModelImportError(ImportError):
    """A model listed in the registry could not be imported or has no valid SPEC."""


def _load(name: str, package: str) -> ModelSpec:
    try:
        module = importlib.import_module(package)
    except Exception as err:
        raise ModelImportError(f"model {name!r}: cannot import {package}: {err}") from err
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ModelSpec):
        raise ModelImportError(f"model {name!r}: {package} does not export SPEC (a ModelSpec)")
    if spec.name != name:
        raise ModelImportError(f"model {name!r}: {package}.SPEC is named {spec.name!r}")
    return spec


def _from_settings() -> None:
    """Register the specs named by ``PPX_EXTRA_MODELS`` (``package.module:SPEC``, ...)."""
    from ppx.config import get_settings
    from ppx.models.spec import resolve

    for path in filter(None, (p.strip() for p in get_settings().extra_models.split(","))):
        try:
            spec = resolve(path)
        except Exception as err:
            raise ModelImportError(f"PPX_EXTRA_MODELS: cannot import {path}: {err}") from err
        if not isinstance(spec, ModelSpec):
            raise ModelImportError(f"PPX_EXTRA_MODELS: {path} is not a ModelSpec")
        if spec.name not in _EXTRA:
            register(spec)


def names() -> list[str]:
    """Every model name: listed ones first, then ``PPX_EXTRA_MODELS``, then registered."""
    _from_settings()
    return [*MODELS, *(n for n in _EXTRA if n not in MODELS)]


def specs() -> list[ModelSpec]:
    """Every model's spec (imports each package; an import failure raises)."""
    return [get(name) for name in names()]


def explainable() -> list[str]:
    """The models with SHAP reports and a feature dictionary (the tabular ones)."""
    return [spec.name for spec in specs() if spec.tabular]


def get(name: str) -> ModelSpec:
    """The spec of model ``name``; a KeyError naming the known models if there is none."""
    if name in _EXTRA:
        return _EXTRA[name]
    if name not in MODELS and name not in names():
        raise KeyError(f"unknown model {name!r}; known: {', '.join(names())}")
    if name in _EXTRA:
        return _EXTRA[name]
    return _load(name, MODELS[name])


def register(spec: ModelSpec) -> None:
    """Add a model at run time (a test's toy model, a plug-in), after the listed ones."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register() takes a ModelSpec, got {type(spec).__name__}")
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is already listed in the registry")
    _EXTRA[spec.name] = spec


def unregister(name: str) -> None:
    _EXTRA.pop(name, None)


@contextlib.contextmanager
def registered(spec: ModelSpec) -> Iterator[ModelSpec]:
    """``with registered(spec):`` the model is part of ppx, and is removed afterwards."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.name)
