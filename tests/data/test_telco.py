"""IBM Telco adapter: typed columns, blank TotalCharges, 0/1 target."""

from __future__ import annotations

import pytest

from ppx.data.adapters.telco import load_telco, telco_features, telco_file


def _available() -> bool:
    try:
        return telco_file().exists()
    except FileNotFoundError:
        return False


def test_blank_total_charges_in_a_small_file(tmp_path):
    f = tmp_path / "telco.csv"
    f.write_text(
        "customerID,gender,SeniorCitizen,tenure,Contract,MonthlyCharges,TotalCharges,Churn\n"
        "A,Male,0,0,Two year,50.0, ,No\n"
        "B,Female,1,5,Month-to-month,70.5,352.5,Yes\n"
    )
    df = load_telco(f)
    assert df["TotalCharges"].tolist() == [0.0, 352.5]
    assert df["Churn"].tolist() == [0, 1]
    num, cat = telco_features(df)
    assert "Contract" in cat and "TotalCharges" in num and "customerID" not in cat


def test_missing_columns_named(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("customerID,tenure\nA,1\n")
    with pytest.raises(ValueError, match="Churn"):
        load_telco(f)


@pytest.mark.skipif(not _available(), reason="telco_churn dataset not present")
def test_real_telco():
    df = load_telco()
    assert len(df) == 7043
    assert df["TotalCharges"].notna().all()
    assert (df.loc[df["tenure"] == 0, "TotalCharges"] == 0).sum() == 11
    assert 0.25 < df["Churn"].mean() < 0.28
