"""Adapters from public datasets (and users' own tables) into canonical tables or frames.

Datasets are found under ``PPX_DATASETS_DIR``, defaulting to ``../shared/datasets`` beside
the project root. Tests that need a dataset skip with a clear reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

from ppx.config import get_settings


def datasets_dir() -> Path:
    """Where public datasets live: ``PPX_DATASETS_DIR`` or ``../shared/datasets``."""
    env = os.environ.get("PPX_DATASETS_DIR")
    return Path(env) if env else get_settings().datasets_dir


def dataset_path(name: str) -> Path:
    """Folder of one dataset; raises FileNotFoundError with a hint when it is missing."""
    path = datasets_dir() / name
    if not path.exists():
        raise FileNotFoundError(
            f"dataset {name!r} not found at {path}; set PPX_DATASETS_DIR to the folder "
            "holding olist_sample/, telco_churn/ and amazon_games/"
        )
    return path
