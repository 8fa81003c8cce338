"""Your own table, end to end: three customer tables of shapes the sample does not have go through the whole pipeline
(train -> score -> segment -> recommend -> publish) with no parameters but `data`, then through the REST API and the
dashboard. The tables are generated here with a known churn mechanism, so the tests need no data from outside the
repo: - `bank`: 50,000 customers, an integer 0/1 target, a row counter and a customer number (identifiers), a surname
column with about 2,000 repeating names (high-cardinality text), a monthly revenue column; - `cards`: a text target
("Attrited Customer" / "Existing Customer"), no value column; - `wide`: 70 columns, a yes/no target with 6 %
churners, two ISO date columns, an entirely empty column, a constant column, a mostly-missing column whose
missingness predicts churn. Small budgets (no AutoML, two baselines) keep CI short; `churn-nb bench tables` runs the
defaults on real tables."""

import json
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import requests
from conftest import Dashboard, churn_nb, client, leave, open_page, shot, start_api, stop_api

SMALL = ["-p", "train.automl", "false", "-p", "train.models", "logreg,hgb"]


def churn_from(rng, logit) -> np.ndarray:
    "0/1 churn drawn from a logistic model of `logit`."
    return (rng.random(len(logit)) < 1 / (1 + np.exp(-logit))).astype(int)


def make_bank(n=50_000, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = np.array(
        [
            a + b
            for a in (
                "Ab",
                "Bel",
                "Cor",
                "Dun",
                "El",
                "Far",
                "Gil",
                "Hol",
                "Ir",
                "Jo",
                "Kel",
                "Lam",
                "Mor",
                "Nor",
                "Ol",
                "Pen",
                "Quin",
                "Ros",
                "Sal",
                "Tor",
            )
            for b in [
                f"{x}{y}"
                for x in ("a", "e", "i", "o", "u")
                for y in (
                    "n",
                    "rs",
                    "ck",
                    "lby",
                    "ton",
                    "well",
                    "man",
                    "ford",
                    "ley",
                    "wood",
                    "by",
                    "field",
                    "ham",
                    "more",
                    "dale",
                    "gate",
                    "stone",
                    "worth",
                    "ridge",
                    "ston",
                )
            ]
        ]
    )
    age, products, active = rng.integers(18, 80, n), rng.integers(1, 5, n), rng.integers(0, 2, n)
    geo = rng.choice(["France", "Germany", "Spain"], n, p=[0.5, 0.25, 0.25])
    balance = np.where(rng.random(n) < 0.35, 0.0, rng.normal(110_000, 30_000, n).round(2))
    logit = -2.2 + 0.06 * (age - 40) + 0.9 * (geo == "Germany") - 0.9 * active + 0.8 * (products >= 3)
    return pd.DataFrame(
        {
            "RowNumber": np.arange(1, n + 1),
            "CustomerId": rng.permutation(n) + 15_600_000,
            "Surname": rng.choice(names, n),
            "CreditScore": rng.integers(350, 851, n),
            "Geography": geo,
            "Gender": rng.choice(["Female", "Male"], n),
            "Age": age,
            "Tenure": rng.integers(0, 11, n),
            "Balance": balance,
            "NumOfProducts": products,
            "HasCrCard": rng.integers(0, 2, n),
            "IsActiveMember": active,
            "MonthlyRevenue": rng.gamma(4, 12, n).round(2),
            "Exited": churn_from(rng, logit),
        }
    )


def make_cards(n=6_000, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    trans, contacts = rng.integers(10, 140, n), rng.integers(0, 7, n)
    card = rng.choice(["Blue", "Silver", "Gold", "Platinum"], n, p=[0.85, 0.1, 0.04, 0.01])
    logit = -0.5 - 0.04 * (trans - 60) + 0.45 * contacts - 0.3 * (card != "Blue")
    flag = np.where(churn_from(rng, logit) == 1, "Attrited Customer", "Existing Customer")
    return pd.DataFrame(
        {
            "CLIENTNUM": rng.permutation(n) + 700_000_000,
            "Attrition_Flag": flag,
            "Customer_Age": rng.integers(26, 74, n),
            "Gender": rng.choice(["F", "M"], n),
            "Education_Level": rng.choice(["Graduate", "High School", "Unknown", "Doctorate"], n),
            "Card_Category": card,
            "Months_on_book": rng.integers(13, 57, n),
            "Total_Trans_Ct": trans,
            "Contacts_Count_12_mon": contacts,
            "Avg_Utilization_Ratio": rng.random(n).round(3),
        }
    )


def make_wide(n=4_000, seed=2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signup = pd.Timestamp("2024-06-30") - pd.to_timedelta(rng.integers(10, 1500, n), unit="D")
    last = pd.Timestamp("2024-06-30") - pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    promo = np.where(rng.random(n) < 0.7, np.nan, rng.normal(5, 2, n).round(1))
    X = rng.normal(size=(n, 60))
    logit = (
        -3.3 + 0.9 * X[:, 0] - 0.7 * X[:, 1] + 0.9 * np.isnan(promo) + 0.004 * (pd.Timestamp("2024-06-30") - last).days
    )
    df = pd.DataFrame(X.round(4), columns=[f"m{i:02d}" for i in range(60)])
    df.insert(0, "account", [f"A-{v:07d}" for v in rng.permutation(n)])
    df["plan"] = rng.choice(["basic", "plus", "pro"], n)
    df["signup_date"], df["last_contact"] = signup.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")
    df["notes"], df["country"], df["promo_score"] = np.nan, "NL", promo
    df["monthly_fee"] = rng.choice([9.99, 19.99, 29.99], n)
    df["churned"] = np.where(churn_from(rng, logit) == 1, "yes", "no")
    return df


TABLES = {"bank": make_bank, "cards": make_cards, "wide": make_wide}
FEEDBACK_SNAPSHOT = "2026-10-01"  # the cards table was taken then: only texts before it may train the model


def make_cards_feedback(cards: pd.DataFrame, seed=3) -> pd.DataFrame:
    """What the cards customers wrote (the project's labelled banking examples): churners complain more, and some of
    them write "I have closed my account" after the snapshot, which training must not see."""
    from churn_nb.text.classify import examples_path

    rng = np.random.default_rng(seed)
    said = pd.read_csv(examples_path("train"))
    said = said[said.industry == "banking"]
    churned = cards.Attrition_Flag.eq("Attrited Customer").to_numpy()
    writers = rng.random(len(cards)) < np.where(churned, 0.5, 0.15)
    rows = []
    for cid, left in zip(cards.CLIENTNUM[writers], churned[writers]):
        for _ in range(rng.integers(1, 4)):
            kind = (
                "complaint" if rng.random() < (0.7 if left else 0.2) else rng.choice(["praise", "suggestion", "other"])
            )
            day = pd.Timestamp("2026-06-01") + pd.Timedelta(
                days=int(rng.integers(0, 120)), hours=int(rng.integers(8, 20))
            )
            rows.append((cid, day.isoformat(), said[said.category == kind].text.sample(1, random_state=rng).iloc[0]))
        if left and rng.random() < 0.5:
            rows.append((cid, "2026-10-20T10:00:00", "I have closed my account and moved to another bank. Terrible."))
    return pd.DataFrame(rows, columns=["client", "sent_at", "message"])


@pytest.fixture(scope="module", params=list(TABLES))
def table(request, tmp_path_factory):
    "(name, workspace, raw table) after `churn-nb run pipeline -p data <table>.csv` with small budgets."
    name = request.param
    ws = tmp_path_factory.mktemp(f"own-{name}")
    df = TABLES[name]()
    df.to_csv(ws / f"{name}.csv", index=False)
    feedback = []
    if name == "cards":  # the cards customers' feedback becomes features (issue 13), trained as of the snapshot
        make_cards_feedback(df).to_csv(ws / "cards_feedback.csv", index=False)
        feedback = ["-p", "train.feedback", str(ws / "cards_feedback.csv"), "-p", "train.snapshot", FEEDBACK_SNAPSHOT]
        feedback += ["-p", "train.drop", "Gender"]  # a sensitive column left out of the model, still reported
    out = churn_nb(
        "run", "pipeline", "-p", "data", str(ws / f"{name}.csv"), *SMALL, *feedback, workspace=ws, timeout=1500
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return name, ws, df


def spec_of(ws):
    "The dataset spec the workspace's champion was trained with (read from its training run, explicitly by URI)."
    from churn_nb.data import DatasetSpec

    c = client(ws)
    run_id = c.get_model_version_by_alias("churn", "champion").run_id
    return DatasetSpec.from_dict(
        json.loads(Path(c.download_artifacts(run_id, "dataset/spec.json", str(ws))).read_text())
    )


def scores(ws) -> pd.DataFrame:
    "The latest published run's customers in the workspace's store."
    from churn_nb.run import store

    return store.latest_scores(f"sqlite:///{Path(ws).resolve()}/churn_nb.db")


def test_the_pipeline_scores_segments_and_publishes_every_customer(table):
    from churn_nb.monitor.outcomes import metric_name

    name, ws, df = table
    s = scores(ws)
    assert len(s) == len(df) and s.customer_id.is_unique
    assert s.probability.between(0, 1).all() and set(s.tier) <= {"High", "Medium", "Low"} and s.tier.nunique() >= 2
    assert s.segment.notna().all() and s.top_reasons.str.len().gt(2).all()
    spec = spec_of(ws)
    notes = " | ".join(spec.notes)
    if name == "bank":
        assert spec.target == "Exited" and spec.id_col == "CustomerId" and "RowNumber" in spec.dropped, notes
        assert "Surname" in spec.categorical and spec.value_col == "MonthlyRevenue", notes
    if name == "cards":
        assert spec.positive_label == "Attrited Customer" and spec.value_col is None, notes
    if name == "wide":
        assert spec.target == "churned" and spec.positive_label == "yes", notes
        assert {"notes", "country"} <= set(spec.dropped) and set(spec.dates) == {"signup_date", "last_contact"}, notes
    report = sorted((Path(ws) / "reports" / "runs").glob("*-recommend/scoring_report.html"))[-1].read_text()
    if spec.value_col is None:
        assert "customers at risk" in report.lower()
    assert "offer" in report.lower()  # which catalogue was used, and why (the offers.yml of the sample does not fit)
    c = client(ws)
    (scored,) = c.search_runs([e.experiment_id for e in c.search_experiments()], "tags.`churn_nb.kind` = 'score'")
    m = scored.data.metrics  # monitoring measured every feature of the table it was trained on: no drift
    own = [f for f in spec.features if f not in spec.feedback.get("columns", [])]  # feedback: texts since the snapshot
    assert "monitoring.alerts" in m and max(m[metric_name("drift.psi", f)] for f in own) < 0.01, m
    latest = json.loads((Path(ws) / "marts" / "latest.json").read_text())["run_id"]
    fairness = json.loads((Path(ws) / "marts" / "runs" / latest / "summary.json").read_text())["fairness"]
    if name == "wide":  # the shipped monitoring.yml names the sample's gender and SeniorCitizen: not in this table
        assert fairness["sensitive"] == [] and any("'gender' is not in the table" in n for n in fairness["notes"])
    else:  # ... and its `gender` finds their `Gender` (case-insensitively), a model feature or not
        assert fairness["sensitive"] == ["Gender"], fairness
        measures = {r["measure"] for r in fairness["rows"]}
        assert {"flagged High", "offered any", "mean offer cost"} <= measures, measures
        assert {r["group"] for r in fairness["rows"]} == set(df.Gender.unique())
        assert "Fairness of who gets offers" in report
    if name == "cards":
        assert "Gender" not in spec.features and "Gender" in spec.dropped, spec.dropped  # out of the model (-p drop)


def test_feedback_features_train_as_of_the_snapshot_and_score_from_the_store(table):
    from churn_nb.text.features import customer_feedback, join_feedback

    name, ws, df = table
    if name != "cards":
        pytest.skip("feedback comes with the cards table")
    spec, c = spec_of(ws), client(ws)
    record = spec.feedback
    assert record["as_of"].startswith(FEEDBACK_SNAPSHOT) and record["as_of_rule"] == "given", record
    assert set(record["columns"]) <= set(spec.numeric) and record["customers"] > 1000, record
    url = f"sqlite:///{Path(ws).resolve()}/churn_nb.db"
    from churn_nb.run import store

    texts = store.analysed_feedback(url)
    assert len(texts) == len(pd.read_csv(Path(ws) / "cards_feedback.csv"))  # stored by the training's feedback run
    trained = join_feedback(
        df, "CLIENTNUM", customer_feedback(texts, pd.Timestamp(FEEDBACK_SNAPSHOT), record["topics"]), record["columns"]
    )
    for column in ("feedback_complaints_90d", "feedback_days_since_complaint", "feedback_min_sentiment"):
        expected = [trained[column].min(), trained[column].max()]
        assert np.allclose(spec.ranges[column], expected), (column, spec.ranges[column], expected)  # no later text
    metrics = c.get_run(c.get_model_version_by_alias("churn", "champion").run_id).data.metrics
    assert metrics["feedback.cv_roc_auc_change"] > 0, metrics  # churners complained more: the words help
    assert metrics["feedback.cv_roc_auc_without"] < metrics["feedback.cv_roc_auc_with"]
    report = sorted((Path(ws) / "reports" / "runs").glob("*-train/train.html"))[-1].read_text()
    assert "What the customers" in report and "without feedback" in report
    latest = json.loads((Path(ws) / "marts" / "latest.json").read_text())["run_id"]
    mart = pd.read_parquet(Path(ws) / "marts" / "runs" / latest / "customers.parquet").set_index("customer_id")
    now = texts.time.max() + pd.Timedelta(seconds=1)  # scoring counts every stored text (no snapshot given)
    scored = customer_feedback(texts, now, record["topics"])
    some = scored.index[:200]
    assert np.allclose(mart.loc[some, "feedback_complaints_90d"], scored.loc[some, "feedback_complaints_90d"])
    assert scores(ws).top_reasons.str.contains("complaint").any()  # reasons in words: "2 complaints in the last …"


def request_rows(df: pd.DataFrame, k: int, seed=0) -> list:
    "`k` raw rows as a CRM would send them: every column the table has but the target, blanks as null."
    target = {"bank": "Exited", "cards": "Attrition_Flag", "wide": "churned"}
    rows = df.sample(k, random_state=seed)
    rows = rows.drop(columns=[c for c in target.values() if c in rows])
    return json.loads(rows.to_json(orient="records"))


def test_the_api_answers_like_the_batch_for_raw_rows(table):
    name, ws, df = table
    spec = spec_of(ws)
    stored = scores(ws).set_index("customer_id")
    rows = request_rows(df, 60)
    proc, url = start_api(ws)
    try:
        for endpoint in ("predict", "explain", "recommend"):
            r = requests.post(f"{url}/{endpoint}", json={"customers": rows}, timeout=120)
            assert r.status_code == 200, (endpoint, r.text[:800])
            got = r.json()["results"]
            if endpoint != "recommend":
                ids = [str(x["customer_id"]) for x in got]
                err = max(abs(x["probability"] - stored.probability[i]) for x, i in zip(got, ids))
                assert err <= 1e-9, (endpoint, err)
                assert [x["tier"] for x in got] == list(stored.tier[ids])
        ignored = set(r.json().get("ignored", []))
        assert set(spec.dropped) & set(rows[0]) <= ignored, (ignored, spec.dropped)
        bad = {**rows[0], "no_such_column": 1}
        r = requests.post(f"{url}/predict", json={"customer": bad})
        assert r.status_code == 422 and "no_such_column" in r.text
    finally:
        stop_api(proc)


def test_a_dashboard_page_renders_the_table(table, tmp_path, browser):
    name, ws, df = table
    d = Dashboard(ws, tmp_path)
    try:
        page = open_page(browser, d.url, ready=".cn-page-overview table")
        text = page.inner_text("body")
        assert f"{len(df):,}" in text and "By risk tier" in text, text[:1500]
        assert "Traceback" not in text
        assert page.outside == [], page.outside  # every request stayed on 127.0.0.1
        shot(page, f"own-table-{name}")
        leave(page)
    finally:
        d.stop()
