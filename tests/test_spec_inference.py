"""Your own table, end to end: every table of the development suite (../shared/data/tables) and a bank-like table load
with no parameters, with the notes a person would expect; dates, high-cardinality categories and left-out columns
reach the models and the API."""

from pathlib import Path
import numpy as np
import orjson
import pandas as pd
import pytest
from churn_nb.data import check_rows, features_frame, load_dataset, target_vector

TABLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "tables"
needs_tables = pytest.mark.skipif(not TABLES.is_dir(), reason=f"the development suite of tables is not at {TABLES}")

EXPECTED = {  # file -> (target, churned, id, dates, left out, a note that must be there)
    "ecommerce_churn.csv": (
        "Churn",
        1,
        "CustomerID",
        [],
        [],
        "'DaySinceLastOrder': 5 % missing; missingness kept as a signal",
    ),
    "gym_churn.csv": ("Churn", 1, None, [], [], "features: 13 numeric, 0 categorical, 0 date; 0 columns not used"),
    "isp_internet_churn.csv": (
        "churn",
        1,
        "id",
        [],
        [],
        "'reamining_contract': 30 % missing; missingness kept as a signal",
    ),
    "powerco_energy_churn.csv": (
        "churn",
        1,
        "id",
        ["date_activ", "date_end", "date_modif_prod", "date_renewal"],
        [],
        "'date_activ': a date, used as days before 2017-06-13",
    ),
    "subscription_churn_64k.csv": (
        "Churn",
        1,
        "CustomerID",
        [],
        [],
        "features: 7 numeric, 3 categorical, 0 date; 0 columns not used",
    ),
    "tv_subscription_churn.csv": (
        "target",
        1.0,
        "id",
        [],
        ["C_TN"],
        "'C_TN' not used: the same value (0.0) on every row",
    ),
}


@needs_tables
@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_suite_table_loads_with_no_parameters(name):
    target, churned, id_col, dates, left_out, note = EXPECTED[name]
    df, spec = load_dataset(TABLES / name)
    assert (spec.target, spec.positive_label, spec.id_col) == (target, churned, id_col), spec.notes
    assert list(spec.dates) == dates and list(spec.dropped) == left_out, spec.notes
    assert note in spec.notes, spec.notes
    assert len(spec.features) == df.shape[1] - 1 - (id_col is not None) - len(left_out)  # all others
    assert len(check_rows(df, spec, name)) == 0  # the training table scores as it is, left-out columns included
    X = features_frame(df, spec)
    assert list(X.columns) == spec.features and all(X[c].dtype == np.float64 for c in dates)


@needs_tables
def test_gym_keeps_its_unique_measurement():
    _, spec = load_dataset(TABLES / "gym_churn.csv")
    assert "Avg_additional_charges_total" in spec.numeric  # 4,000 distinct values in 4,000 rows: an amount, not an id


def test_the_sample_loads_as_before():
    df, spec = load_dataset()
    assert (spec.target, spec.positive_label, spec.id_col) == ("Churn", "Yes", "customerID")
    assert spec.value_col == "MonthlyCharges"
    assert spec.dates == {} and spec.dropped == {}
    assert len(spec.features) == 19
    assert spec.notes[-1] == "features: 4 numeric, 15 categorical, 0 date; 0 columns not used"


def bank_table(n=10_000, seed=0):
    "A bank-like table: a row counter, unique customer numbers, ~2,000 surnames that repeat, an integer 0/1 target."
    rng = np.random.default_rng(seed)
    surnames = [f"Surname{i}" for i in range(2000)]
    return pd.DataFrame(
        {
            "RowNumber": range(1, n + 1),
            "CustomerId": rng.permutation(n) + 15_565_701,
            "Surname": rng.choice(surnames, n),
            "CreditScore": rng.integers(350, 851, n),
            "Geography": rng.choice(["France", "Spain", "Germany"], n),
            "Age": rng.integers(18, 90, n),
            "Balance": rng.gamma(2, 5e4, n).round(2),
            "Exited": (rng.random(n) < 0.2).astype(int),
        }
    )


def test_a_bank_like_table_infers_and_trains(tmp_path):
    from churn_nb.model.baselines import hist_gradient_boosting
    from churn_nb.model.explain import tree_explainer

    bank_table().to_csv(tmp_path / "bank.csv", index=False)
    df, spec = load_dataset(tmp_path / "bank.csv")
    assert (spec.target, spec.positive_label, spec.id_col) == ("Exited", 1, "CustomerId")
    assert spec.categorical == ["Surname", "Geography"]
    assert "Surname" not in spec.levels  # too many levels to list
    assert spec.dropped == {"RowNumber": "a row counter (1, 2, 3, …), not a customer property"}
    model = hist_gradient_boosting(spec).fit(df, target_vector(df, spec))
    p = model.predict_proba(df.head(100).assign(Surname="Never-seen"))[:, 1]
    assert np.isfinite(p).all()
    tree_explainer(model, spec, features_frame(df.sample(500, random_state=0), spec))  # engine = model


@needs_tables
def test_dates_reach_the_model_and_the_api():
    "powerco's dates as features of a model; its rows (dates as ISO text, the target too) through the API's schema."
    from churn_nb.model.baselines import logistic_regression
    from churn_nb.faces.serve import customer_records, ignored_fields, request_model, request_rows, typed_frame

    df, spec = load_dataset(TABLES / "powerco_energy_churn.csv")
    model = logistic_regression(spec).fit(df, target_vector(df, spec))
    names = set(model[:-1].get_feature_names_out())
    assert "date_activ" in names and "missingindicator_date_activ" not in names  # a number, never missing
    raw = df.sample(500, random_state=0)
    rows = [{**r, "churn": int(y)} for r, y in zip(customer_records(raw, spec), raw.churn)]  # with the target
    got = request_rows(request_model(spec), orjson.dumps({"customers": rows}))
    assert ignored_fields(got, spec) == ["churn"]
    X = typed_frame(got, spec)
    pd.testing.assert_frame_equal(X, features_frame(raw, spec).reset_index(drop=True), check_dtype=False)
    np.testing.assert_allclose(model[1:].predict_proba(X)[:, 1], model.predict_proba(raw)[:, 1], rtol=0, atol=1e-12)
