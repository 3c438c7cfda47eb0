"""``ppx score churn --table FILE --model NAME --out FILE``: score a new export of a table.

The registered table model (``ppx train churn --table ... --name NAME``) is loaded by
alias and the file is read in chunks with the same sniffing as training (delimiter,
encoding, text cells), so memory holds one chunk whatever the file's size. Each row of
the output: the customer id (when the model has an id column and the file carries it),
the calibrated probability, the model version and the top three reasons in words.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ppx.models.churn.hygiene import read_user_table, sniff_csv
from ppx.models.churn.tabular import TableError


def iter_table_chunks(path: Path, size: int) -> Iterator[pd.DataFrame]:
    """A CSV (sniffed) or Parquet file, ``size`` rows at a time, cells as text for CSV."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=size):
            yield batch.to_pandas()
        return
    read_user_table_head(path)  # empty / header-only files get their own message
    encoding, sep = sniff_csv(path)
    yield from pd.read_csv(
        path, sep=sep, encoding=encoding, dtype=str, keep_default_na=False, chunksize=size
    )


def read_user_table_head(path: Path) -> None:
    """Refuse a missing, empty or header-only file before scoring starts."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        raise TableError(f"table file {path} is empty (no header, no rows)")
    if head.count(b"\n") <= 1 and len(head) < (1 << 16):
        read_user_table(path)  # raises the header-only message


def count_rows(path: Path) -> int | None:
    """Data rows of a file, for the progress bar (lines minus the header for CSV)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(0, lines + (last != b"\n") - 1)


def score_table(
    table: str | Path,
    model: str,
    out: str | Path,
    alias: str = "champion",
    chunk_size: int = 20_000,
    reasons: bool = True,
) -> tuple[Path, int, str]:
    """Score every row of ``table`` with the registered table model ``model``.

    Returns the written file, its row count and the model's registered name and version.
    """
    import mlflow
    from ppx import tracking
    from ppx.explain.sources import as_explainable
    from ppx.models.churn.train import table_model_name
    from ppx.scoring import (
        MODEL_VERSION,
        PROBABILITY,
        ScoreError,
        check_out,
        reason_texts,
        write_scores,
    )

    table, out = Path(table), Path(out)
    if not table.exists():
        raise TableError(f"table file {table} does not exist")
    check_out(out)
    name = table_model_name(table, model)
    tracking.configure()
    mv = tracking.get_alias_version(name, alias)
    if mv is None:
        raise ScoreError(
            f"{name} has no version with alias {alias!r} "
            f"({tracking.missing_alias_hint(name, alias)}); train it with "
            f"`ppx train churn --table FILE --target COLUMN --name {model}`"
        )
    python_model = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}").unwrap_python_model()
    churn = python_model.model
    if churn.mode != "table":
        raise ScoreError(f"{name} is not a table model; use `ppx score churn --store PATH`")
    explainable = as_explainable(python_model) if reasons else None
    id_col = churn.info.get("id_column")
    needed = [*churn.encoder.numeric, *churn.encoder.categorical]
    version = f"{name} v{mv.version}"

    def chunks() -> Iterator[pd.DataFrame]:
        for raw in iter_table_chunks(table, chunk_size):
            absent = [c for c in needed if c not in raw.columns]
            if absent:
                raise TableError(
                    f"{table}: the model's column(s) {absent[:8]} are missing; it was trained "
                    f"on {churn.info.get('table')}"
                )
            raw = raw.reset_index(drop=True)
            part = pd.DataFrame(index=raw.index)
            if id_col and id_col in raw.columns:
                part[id_col] = raw[id_col].to_numpy()
            part[PROBABILITY] = churn.predict_table(raw)["p_churn"].to_numpy()
            part[MODEL_VERSION] = version
            if explainable is not None:
                part = pd.concat([part, reason_texts(explainable, raw, "churn")], axis=1)
            yield part

    path, rows = write_scores(chunks(), out, total=count_rows(table), label=f"scoring {name}")
    return path, rows, version
