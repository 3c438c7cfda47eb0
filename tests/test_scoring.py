"""The shared score writer and ``ppx score``'s refusals (no model training needed)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from ppx.cli import app
from ppx.scoring import ScoreError, iter_chunks, write_scores

runner = CliRunner()


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": range(1, n + 1), "probability": [i / n for i in range(n)], "r": "x"}
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunks_are_written_in_order_and_complete(tmp_path, suffix):
    df = _frame(1_003)
    out, rows = write_scores(iter_chunks(df, 100), tmp_path / f"s{suffix}", total=len(df))
    back = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert rows == 1_003
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == [f"s{suffix}"], "no temporary file left"


def test_an_interrupted_run_leaves_no_file(tmp_path):
    def chunks():
        yield _frame(10)
        raise RuntimeError("scoring failed half way")

    with pytest.raises(RuntimeError):
        write_scores(chunks(), tmp_path / "s.parquet")
    assert list(tmp_path.iterdir()) == []


def test_unsupported_output_is_refused(tmp_path):
    with pytest.raises(ScoreError, match=r"\.csv or \.parquet"):
        write_scores(iter_chunks(_frame(3)), tmp_path / "s.xlsx")


def test_score_without_a_registered_model_says_what_to_do(tiny_world, mlflow_tmp, tmp_path):
    _, world = tiny_world
    res = runner.invoke(
        app, ["score", "churn", "--store", str(world), "--out", str(tmp_path / "s.csv")]
    )
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "ppx-churn has no version with alias 'champion'" in text
    assert "ppx train churn" in text
    assert not (tmp_path / "s.csv").exists()
