"""Every refused input: the message names the file, the column, the rows and the fix; no run ends FINISHED; no alias
moves."""

import numpy as np
import pytest
from conftest import all_runs, champion, churn_nb, use_workspace
from churn_nb.data import ChurnDataError, load_sample
from churn_nb.model.train import train


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    "A workspace with a champion already registered."
    with use_workspace(tmp_path_factory.mktemp("refusals")) as ws:
        train(models="logreg", cv_folds=2, automl=False)
        yield ws


def telco_csv(d, name, change=lambda df: df):
    "The sample, changed by `change`, written to d/name."
    df = change(load_sample().head(300).copy())
    path = d / name
    df.to_parquet(path) if name.endswith(".parquet") else df.to_csv(path, index=False)
    return path


def dup_ids(df):
    df.loc[[10, 20, 30], "customerID"] = df.customerID[5]
    return df


def empty_column(df):
    df["PaperlessBilling"] = np.nan
    return df


def header_only(df):
    return df.head(0)


def no_target(df):
    return df.drop(columns="Churn")


def one_class(df):
    df["Churn"] = "No"
    return df


CASES = {  # name: (files to make, train kwargs, expected message parts)
    "missing file": (lambda d: {"data": str(d / "nope.csv")}, ["nope.csv: file not found", "Fix: check the path"]),
    "unparseable parquet": (
        lambda d: (d / "bad.parquet").write_bytes(b"\x00garbage" * 100) and {"data": str(d / "bad.parquet")},
        ["bad.parquet: cannot be read", "Fix:"],
    ),
    "unparseable csv": (
        lambda d: (d / "ragged.csv").write_text('a,b\n1,2\n3,4,5,6\n"7') and {"data": str(d / "ragged.csv")},
        ["ragged.csv: cannot be read", "Fix:"],
    ),
    "empty table": (
        lambda d: {"data": str(telco_csv(d, "empty.csv", header_only))},
        ["empty.csv: the table has no rows", "Fix:"],
    ),
    "missing target": (
        lambda d: {"data": str(telco_csv(d, "notarget.csv", no_target))},
        ["notarget.csv: no target column found", "Fix: name the outcome column: target="],
    ),
    "named target missing": (
        lambda d: {"data": str(telco_csv(d, "t.csv")), "target": "Churned"},
        ["t.csv: target names column 'Churned', which the table does not have"],
    ),
    "single-class target": (
        lambda d: {"data": str(telco_csv(d, "oneclass.csv", one_class))},
        ["oneclass.csv: column 'Churn': the target holds 1 class ('No')", "Fix:"],
    ),
    "unknown positive label": (
        lambda d: {"data": str(telco_csv(d, "label.csv")), "positive_label": "Churned"},
        [
            "label.csv: column 'Churn': positive_label 'Churned' is not a value of the target (values: 'No', 'Yes')",
            "Fix: pass positive_label= one of",
        ],
    ),
    "duplicate ids": (
        lambda d: {"data": str(telco_csv(d, "dups.csv", dup_ids))},
        ["dups.csv: column 'customerID': duplicate ids (rows 5, 10, 20, 30)", "Fix: make the ids unique"],
    ),
    "mostly non-numeric numeric column": (
        lambda d: {"data": str(telco_csv(d, "num.csv")), "numeric": "Contract"},
        [
            "num.csv: column 'Contract': declared numeric but mostly not numbers (0% numeric; first values "
            "'Month-to-month'",
            "(rows 0, 1, 2, 3, 4, … (300 rows in all))",
            "Fix: fix the values, or declare it categorical",
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_a_helpful_message_and_nothing_moves(ws, tmp_path, case):
    make, expected = CASES[case]
    kwargs = make(tmp_path)
    before_champion = champion(ws)
    finished_before = sum(r.info.status == "FINISHED" for r in all_runs(ws))
    with pytest.raises(ChurnDataError) as err:
        train(models="logreg", cv_folds=2, automl=False, **kwargs)
    for part in expected:
        assert part in str(err.value), str(err.value)
    newest = all_runs(ws)[0]
    assert newest.info.status == "FAILED"
    assert expected[0] in newest.data.tags["churn_nb.error"]
    assert sum(r.info.status == "FINISHED" for r in all_runs(ws)) == finished_before
    assert champion(ws) == before_champion


def test_empty_column_left_out_with_a_note_and_refused_when_strict(ws, tmp_path):
    """An entirely empty column is left out of the spec with a note (training goes ahead); strict=True refuses it as
    before."""
    from churn_nb.data import load_dataset

    path = telco_csv(tmp_path, "emptycol.parquet", empty_column)
    res = train(str(path), models="logreg", cv_folds=2, automl=False, experiment="empty column")
    assert "PaperlessBilling" not in res.spec.features and res.spec.dropped["PaperlessBilling"] == "entirely empty"
    assert "'PaperlessBilling' not used: entirely empty" in res.spec.notes
    assert all_runs(ws)[0].info.status == "FINISHED"
    with pytest.raises(ChurnDataError) as err:
        load_dataset(str(path), strict=True)
    for part in [
        "emptycol.parquet: column 'PaperlessBilling': the column is entirely empty",
        "Fix: drop it (drop='PaperlessBilling')",
    ]:
        assert part in str(err.value)


def test_refused_from_the_command_line(ws, tmp_path):
    before = champion(ws)
    path = telco_csv(tmp_path, "dups.csv", dup_ids)
    r = churn_nb(
        "run", "train", "-p", "data", str(path), "-p", "models", "logreg", "-p", "automl", "false", workspace=ws
    )
    assert r.returncode == 1
    assert (
        f"churn-nb run: train failed: ChurnDataError: {path}: column 'customerID': duplicate ids (rows 5, 10, 20, 30). "
        "Fix: make the ids unique" in r.stderr
    ), r.stderr[-2000:]
    assert "report: " in r.stderr and "Traceback" not in r.stderr
    assert all_runs(ws)[0].info.status == "FAILED" and champion(ws) == before


def test_sql_source_and_overrides_train(ws, tmp_path):
    import sqlite3

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as con:
        load_sample().rename(columns={"Churn": "Left"}).head(2000).to_sql("customers", con, index=False)
    res = train(
        f"sqlite:///{db}",
        "customers",
        target="Left",
        positive_label="yes",
        models="logreg",
        cv_folds=2,
        automl=False,
        experiment="sql",
    )
    assert res.spec.target == "Left" and res.spec.positive_label == "Yes"
    assert all_runs(ws)[0].info.status == "FINISHED"


def test_bad_feedback_for_training_is_refused_by_row_and_nothing_is_stored(ws, tmp_path):
    """Training with feedback (what `churn-nb run train -p feedback tickets.csv` runs first): an unknown customer, then
    an empty text, refused by row before anything is stored."""
    import pandas as pd
    from churn_nb.run import store
    from churn_nb.run.feedback import training_feedback

    ids = load_sample().customerID
    bad = pd.DataFrame(
        {
            "customer_id": [ids[0], ids[1], "NO-SUCH-ID"],
            "time": ["2026-11-01", "2026-11-02", "2026-11-03"],
            "text": ["The bill doubled again, fix it or I leave.", "  ", "Great service"],
        }
    )
    path = tmp_path / "tickets.csv"
    bad.to_csv(path, index=False)
    before = champion(ws)
    with pytest.raises(ChurnDataError) as err:
        training_feedback(str(path))  # checked against the training table (here the sample)
    where = f"{path}: column 'customer_id': customers the customer table does not have"
    assert f"{where} ('NO-SUCH-ID') (rows 2). Fix: correct the ids" in str(err.value), str(err.value)
    assert store.feedback_analysis(url=f"sqlite:///{ws}/churn_nb.db").empty  # nothing half-written
    assert all_runs(ws)[0].info.status == "FAILED" and champion(ws) == before
    bad.loc[2, "customer_id"] = ids[2]
    bad.to_csv(path, index=False)
    with pytest.raises(ChurnDataError) as err:
        training_feedback(str(path))  # checked against the training table (here the sample)
    assert f"{path}: column 'text': empty texts (rows 1)" in str(err.value)
    assert champion(ws) == before and store.feedback_analysis(url=f"sqlite:///{ws}/churn_nb.db").empty
