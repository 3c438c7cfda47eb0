"""IBM Telco customer churn (../shared/datasets/telco_churn) as a churn training table.

The file is a snapshot of 7,043 telecom customers: services, contract, charges and a
Yes/No ``Churn`` column (left within the last month). Two quirks matter:

* ``TotalCharges`` is text, blank for the 11 customers with zero tenure (they have not
  been billed yet); it becomes 0.0 for them, which is what the billing system means.
* ``SeniorCitizen`` is 0/1 while every other flag is Yes/No; it stays numeric.

There is no time column, so the table suits a stratified cross-validated benchmark,
not a time-based one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data.adapters import dataset_path

DATASET = "telco_churn"
FILE = "WA_Fn-UseC_-Telco-Customer-Churn.csv"
ID_COLUMN = "customerID"
TARGET_COLUMN = "Churn"
NUMERIC_COLUMNS = ("SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges")


def telco_file(path: str | Path | None = None) -> Path:
    """Location of the Telco CSV (a folder or the file itself may be given)."""
    p = Path(path) if path is not None else dataset_path(DATASET)
    return p / FILE if p.is_dir() else p


def load_telco(path: str | Path | None = None) -> pd.DataFrame:
    """The Telco table with typed columns and a 0/1 ``Churn``.

    Raises:
        FileNotFoundError: the dataset is not where ``datasets_dir()`` points.
        ValueError: the file lacks the expected columns (names the missing ones).
    """
    file = telco_file(path)
    if not file.exists():
        raise FileNotFoundError(f"Telco file not found at {file}")
    df = pd.read_csv(file, dtype=str, keep_default_na=False)
    need = {ID_COLUMN, TARGET_COLUMN, *NUMERIC_COLUMNS}
    missing = sorted(need - set(df.columns))
    if missing:
        raise ValueError(f"{file}: missing Telco columns {missing}")
    for col in NUMERIC_COLUMNS:
        df[col] = pd.to_numeric(df[col].str.strip().replace("", np.nan), errors="coerce")
    # Blank TotalCharges = not billed yet (tenure 0).
    df["TotalCharges"] = df["TotalCharges"].fillna(0.0)
    df[TARGET_COLUMN] = (df[TARGET_COLUMN].str.strip() == "Yes").astype(int)
    return df


def telco_features(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns of the Telco table."""
    numeric = [*NUMERIC_COLUMNS]
    categorical = [c for c in df.columns if c not in (ID_COLUMN, TARGET_COLUMN, *numeric)]
    return numeric, categorical
