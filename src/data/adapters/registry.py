"""``ppx data load``: one command in front of every public-dataset adapter.

Each adapter lives in its own module (``ppx.data.adapters.<module>``) and is written by
whoever owns the model that needs it, so this registry does not import them up front: it
resolves the module and its loader by name when the command runs. That keeps ``ppx
--help`` fast and lets an adapter land (or change) without touching the CLI.

A loader is the module's ``load`` function, or ``load_<module>`` when there is no
``load``. It takes an optional path (a folder or the data file itself). Whatever it
returns - canonical tables (a dict of frames), one training frame, or a dataclass of
frames such as a leave-one-out split - is reported as rows per part, and can be written
as Parquet with ``--out`` for a look in a notebook.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from ppx.data.adapters import dataset_path

PACKAGE = "ppx.data.adapters"


@dataclass(frozen=True)
class Adapter:
    """How to find one dataset and its loader.

    Attributes:
        module: module name under ``ppx.data.adapters``.
        dataset: folder under ``datasets_dir()`` holding the public files.
        what: one line for ``--help`` and the printed table's title.
    """

    module: str
    dataset: str
    what: str


ADAPTERS: dict[str, Adapter] = {
    "olist": Adapter("olist", "olist_sample", "Olist orders with Olist's own promise (delivery)"),
    "telco": Adapter("telco", "telco_churn", "IBM Telco customer churn table (churn)"),
    "amazon-games": Adapter(
        "amazon_games", "amazon_games", "Amazon Games sequences, leave-one-out (recs)"
    ),
}

Dataset = Enum("Dataset", {name.replace("-", "_"): name for name in ADAPTERS}, type=str)


def _module(name: str):
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(ADAPTERS)}")
    module = f"{PACKAGE}.{ADAPTERS[name].module}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        raise ValueError(f"the {name} adapter ({module}) is not installed") from err


def loader(name: str) -> Callable[..., Any]:
    """The loader function of a dataset's adapter (``load`` or ``load_<module>``)."""
    mod = _module(name)
    for attr in ("load", f"load_{ADAPTERS[name].module}"):
        fn = getattr(mod, attr, None)
        if callable(fn):
            return fn
    raise ValueError(
        f"the {name} adapter ({mod.__name__}) has no load() or load_{ADAPTERS[name].module}()"
    )


def load_dataset(name: str, path: str | Path | None = None) -> Any:
    """Run a dataset's adapter; ``path`` overrides where its files are found.

    Without a path, a loader whose path parameter is optional finds its own default
    location; one that needs a path gets the dataset's folder under ``datasets_dir()``.
    A folder given for an adapter that reads a single file (``FILE``) means that file.

    Raises:
        FileNotFoundError: the dataset (or the given path) is not there.
        ValueError: unknown dataset, missing adapter, or the adapter rejected the data.
    """
    fn = loader(name)
    mod = _module(name)
    if path is not None:
        path = Path(path)
        if path.is_dir() and isinstance(getattr(mod, "FILE", None), str):
            path = path / mod.FILE
        return fn(path)
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].default is inspect.Parameter.empty:
        return fn(dataset_path(ADAPTERS[name].dataset))
    return fn()


def frames_of(name: str, result: Any) -> dict[str, pd.DataFrame]:
    """The frames inside an adapter's result, by part name.

    A module that also offers ``to_canonical(frame)`` gets its canonical tables listed
    too (as ``canonical_<table>``), so one command shows both shapes.
    """
    if isinstance(result, pd.DataFrame):
        frames = {ADAPTERS[name].module: result}
    elif isinstance(result, Mapping):
        frames = {str(k): v for k, v in result.items() if isinstance(v, pd.DataFrame)}
    elif dataclasses.is_dataclass(result):
        frames = {
            f.name: getattr(result, f.name)
            for f in dataclasses.fields(result)
            if isinstance(getattr(result, f.name), pd.DataFrame)
        }
    elif isinstance(result, (tuple, list)):
        frames = {f"part_{i}": v for i, v in enumerate(result) if isinstance(v, pd.DataFrame)}
    else:
        frames = {}
    to_canonical = getattr(_module(name), "to_canonical", None)
    if isinstance(result, pd.DataFrame) and callable(to_canonical):
        frames.update({f"canonical_{k}": v for k, v in to_canonical(result).items()})
    return frames


def data_load(
    dataset: Dataset = typer.Argument(..., help="Which public dataset to load."),
    path: Path | None = typer.Option(
        None, "--path", help="Folder or file to read instead of PPX_DATASETS_DIR/<dataset>."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write every part as <out>/<part>.parquet."
    ),
) -> None:
    """Load a public dataset through its adapter and report rows per part."""
    from ppx.terminal import console, fail, print_table

    name = dataset.value
    started = time.perf_counter()
    try:
        with console.status(f"loading {name}"):
            result = load_dataset(name, path)
            frames = frames_of(name, result)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    if not frames:
        fail(f"the {name} adapter returned {type(result).__name__}, which holds no tables")
    rows = [{"part": k, "rows": len(v), "columns": v.shape[1]} for k, v in frames.items()]
    print_table(f"{name}: {ADAPTERS[name].what}", rows)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for part, df in frames.items():
            df.to_parquet(out / f"{part}.parquet", index=False)
        console.print(f"wrote {len(frames)} Parquet files to {out}")
    console.print(f"loaded in {time.perf_counter() - started:.1f} s")


def register(data_app: typer.Typer) -> None:
    """Add ``load`` to the ``ppx data`` group (called once from ``ppx.cli``)."""
    data_app.command("load")(data_load)
