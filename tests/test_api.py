"""The prediction API over HTTP, started as users start it (`churn-nb serve`, no fallback: a broken entry point fails
here), on the shared `scored` workspace (H2O AutoML champion, published scoring run): every kind of bad input
answered with a 4xx JSON body, parity with the scheduled scoring, the prediction log, feedback posted, analysed and
stored (and refused without storing anything), the offline docs, schemathesis against /openapi.json, a champion
trained with feedback features (requests without them, notes that score the customer again) and a champion swap under
load, each in a workspace of its own."""

import json, re, sqlite3, subprocess, sys, threading, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import requests
from conftest import ROOT, champion, client, run_python, start_api, stop_api, tail


@pytest.fixture(scope="module")
def api(scored):
    "The API on the shared scored workspace, started by `churn-nb serve`; its base URL."
    proc, url = start_api(scored)
    yield url
    stop_api(proc)


@pytest.fixture(scope="module")
def records(api):
    "The Telco sample as request customers, typed by the served champion's input schema (numbers, levels, null: blank)."
    return request_records(api)


def request_records(api) -> list:
    "The Telco sample as request customers of the API at `api`, typed by its input schema (null for a blank)."
    schema = requests.get(f"{api}/model").json()["input"]
    raw = pd.read_csv(ROOT / "churn_nb" / "sample" / "telco_churn.csv.gz")
    out = pd.DataFrame({c: pd.to_numeric(raw[c].astype(str).str.strip(), errors="coerce") for c in schema["numeric"]})
    out = out.astype(object).where(out.notna(), None)
    for c in schema["categorical"]:
        out[c] = raw[c].astype(str).str.strip()  # the sample has no blank categories
    out.insert(0, schema["id_column"], raw[schema["id_column"]].astype(str))
    return out.to_dict("records")


LATEST_RUN = "SELECT run_id FROM scoring_runs ORDER BY published_at DESC LIMIT 1"


def store_rows(workspace, sql, *args):
    "Rows of the workspace's customer store (SQLite), read directly."
    with sqlite3.connect(Path(workspace) / "churn_nb.db") as con:
        return con.execute(sql, args).fetchall()


def latest_scores(workspace):
    "customer id -> (probability, tier, top reasons) of the latest published scoring run."
    rows = store_rows(
        workspace,
        f"SELECT customer_id, probability, tier, top_reasons FROM customer_scores WHERE run_id = ({LATEST_RUN})",
    )
    return {r[0]: r[1:] for r in rows}


# ---- every bad input: a 4xx JSON answer naming the field and the fix, never a 5xx or a traceback ----


def one(records, **changes):
    c = {**records[0], **changes}
    return {k: v for k, v in c.items() if v is not DROP}


DROP = object()
JSON = {"content-type": "application/json"}

BAD = {  # name -> (body maker: records -> (bytes or JSON-able, headers), status, field)
    "wrong type (true for a number)": (lambda r: ({"customer": one(r, tenure=True)}, None), 422, "customer.tenure"),
    "a string for a number": (
        lambda r: ({"customer": one(r, MonthlyCharges="29.85")}, None),
        422,
        "customer.MonthlyCharges",
    ),
    "a number for a category": (lambda r: ({"customer": one(r, Contract=2)}, None), 422, "customer.Contract"),
    "unknown level": (lambda r: ({"customer": one(r, PaymentMethod="Bitcoin")}, None), 422, "customer.PaymentMethod"),
    "level with stray spaces": (lambda r: ({"customer": one(r, Contract=" Two year")}, None), 422, "customer.Contract"),
    "missing field": (lambda r: ({"customer": one(r, Contract=DROP)}, None), 422, "customer.Contract"),
    "a field the table never had": (
        lambda r: ({"customer": one(r, **{"Shoe size": 42})}, None),
        422,
        "customer.Shoe size",
    ),
    "misspelt field": (lambda r: ({"customer": {**one(r, tenure=DROP), "Tenure": 3}}, None), 422, "customer.tenure"),
    "NaN": (
        lambda r: (b'{"customer": ' + json.dumps(one(r, TotalCharges=float("nan"))).encode() + b"}", JSON),
        422,
        "customer.TotalCharges",
    ),
    "Infinity": (
        lambda r: (b'{"customer": ' + json.dumps(one(r, tenure=float("inf"))).encode() + b"}", JSON),
        422,
        "customer.tenure",
    ),
    "huge number": (lambda r: ({"customer": one(r, TotalCharges=1e300)}, None), 422, "customer.TotalCharges"),
    "huge integer": (
        lambda r: (b'{"customer": ' + json.dumps(one(r, tenure=10**400)).encode() + b"}", JSON),
        422,
        "customer.tenure",
    ),
    "id neither text nor a whole number": (
        lambda r: ({"customer": one(r, customerID=12.5)}, None),
        422,
        "customer.customerID",
    ),
    "empty batch": (lambda r: ({"customers": []}, None), 422, "customers"),
    "1,001 customers": (lambda r: ({"customers": r[:1001]}, None), 422, "customers"),
    "a bad customer deep in a batch": (
        lambda r: ({"customers": r[:40] + [one(r, gender="X")]}, None),
        422,
        "customers[40].gender",
    ),
    "customer and customers": (lambda r: ({"customer": r[0], "customers": r[:2]}, None), 422, None),
    "neither": (lambda r: ({}, None), 422, None),
    "customer null": (lambda r: ({"customer": None}, None), 422, "customer"),
    "a list as the body": (lambda r: (r[:2], None), 422, None),
    "unknown top-level field": (lambda r: ({"customer": r[0], "debug": True}, None), 422, "debug"),
    "malformed JSON": (lambda r: (b'{"customer": {"tenure": 1,', JSON), 400, None),
    "empty body": (lambda r: (b"", JSON), 400, None),
    "not UTF-8": (lambda r: (b'{"customer": "\xff\xfe"}', JSON), 400, None),
    "wrong content type": (
        lambda r: (json.dumps({"customer": r[0]}).encode(), {"content-type": "text/plain"}),
        415,
        None,
    ),
    "form data": (lambda r: (b"tenure=1", {"content-type": "application/x-www-form-urlencoded"}), 415, None),
    "no content type": (lambda r: (json.dumps({"customer": r[0]}).encode(), {"content-type": ""}), 415, None),
    "body over 4 MiB": (lambda r: (b'{"customers": [' + b" " * (4 * 2**20) + b"]}", JSON), 413, None),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_gets_a_4xx_json_answer(api, records, name):
    make, status, field = BAD[name]
    body, headers = make(records)
    for endpoint in ("predict", "explain", "recommend"):
        sent = {"json": body} if headers is None else {"data": body, "headers": headers}
        r = requests.post(f"{api}/{endpoint}", **sent, timeout=60)
        assert r.status_code == status, (endpoint, r.status_code, r.text[:500])
        got = r.json()
        assert isinstance(got["error"], str) and got["error"] and isinstance(got["fix"], str) and got["fix"], got
        assert "Traceback" not in r.text and 'File "' not in r.text
        if field:
            assert got["field"] == field, got
    if name == "unknown level":
        assert got["allowed"] == [
            "Bank transfer (automatic)",
            "Credit card (automatic)",
            "Electronic check",
            "Mailed check",
        ]
    if name == "a field the table never had":
        assert "Contract" in got["allowed"] and "Shoe size" not in got["allowed"]


def test_the_tables_own_unused_columns_are_accepted_and_listed_as_ignored(api, records):
    "A row of the customer table as it is (with its target) is answered; only names the table never had are refused."
    for endpoint in ("predict", "explain"):
        r = requests.post(f"{api}/{endpoint}", json={"customers": [one(records, Churn="Yes"), records[1]]}, timeout=60)
        assert r.status_code == 200 and r.json()["ignored"] == ["Churn"], r.text[:500]
    plain = requests.post(f"{api}/predict", json={"customer": records[0]}).json()
    assert plain["ignored"] == []
    assert abs(plain["results"][0]["probability"] - r.json()["results"][0]["probability"]) <= 1e-9
    assert requests.get(f"{api}/model").json()["input"]["ignored"] == ["Churn"]


def test_wrong_path_and_method(api):
    for r, status in (
        (requests.get(f"{api}/predict"), 405),
        (requests.post(f"{api}/predictions", json={}), 404),
        (requests.delete(f"{api}/model"), 405),
    ):
        assert r.status_code == status and {"error", "fix"} <= set(r.json()), r.text


def test_a_batch_with_several_problems_lists_them_all(api, records):
    bad = [one(records, tenure="1"), records[1], one(records, Contract="Ten year", Churn="Yes", Shoe=9)]
    got = requests.post(f"{api}/predict", json={"customers": bad}).json()
    # the target is no problem: ignored
    assert [e["field"] for e in got["errors"]] == ["customers[0].tenure", "customers[2].Contract", "customers[2].Shoe"]
    assert got["error"].startswith('customers[0].tenure must be a JSON number, not "1"')


# ---- what the API answers ----


def test_health_and_model(api, scored):
    h = requests.get(f"{api}/health").json()
    assert h["status"] == "ok" and h["model_version"] == champion(scored), h
    m = requests.get(f"{api}/model").json()
    assert m["name"] == "churn" and m["version"] == champion(scored) and m["uri"] == "models:/churn@champion"
    assert m["candidate"] in ("h2o_automl", "logreg", "rf", "hgb", "hgb_default", "blend")
    assert 0.8 < m["metrics"]["holdout_roc_auc"] < 1 and m["model"] and m["explanations"]
    assert m["input"]["categorical"]["Contract"] == ["Month-to-month", "One year", "Two year"]
    assert m["input"]["id_column"] == "customerID"
    assert set(m["tiers"]["thresholds"]) == {"high", "medium"} and m["tiers"]["run_id"]
    assert m["customer_schema"]["additionalProperties"] is False


def test_probabilities_tiers_and_reasons_equal_batch_scoring(api, scored, records):
    stored = latest_scores(scored)
    rng = np.random.default_rng(0)
    sample = [records[i] for i in rng.choice(len(records), 250, replace=False)]
    for endpoint in ("predict", "explain"):
        r = requests.post(f"{api}/{endpoint}", json={"customers": sample}, timeout=60)
        assert r.status_code == 200, r.text[:500]
        got = r.json()["results"]
        assert [x["customer_id"] for x in got] == [c["customerID"] for c in sample]
        err = max(abs(x["probability"] - stored[x["customer_id"]][0]) for x in got)
        assert err <= 1e-9, (endpoint, err)
        assert [x["tier"] for x in got] == [stored[x["customer_id"]][1] for x in got]
    # the reason objects the store holds
    assert [x["top_reasons"] for x in got] == [json.loads(stored[x["customer_id"]][2]) for x in got]
    for x in got:
        assert abs(x["base"] + sum(x["contributions"].values()) - x["probability"]) <= 1e-6
    for c in sample[:25]:  # one customer per request: the small-request paths agree too
        x = requests.post(f"{api}/predict", json={"customer": c}).json()["results"][0]
        assert abs(x["probability"] - stored[c["customerID"]][0]) <= 1e-9 and x["tier"] == stored[c["customerID"]][1]


def test_recommend_ranks_offers_as_the_scoring_run(api, scored, records):
    rows = store_rows(
        scored,
        "SELECT customer_id, top_offers FROM customer_scores "
        f"WHERE run_id = ({LATEST_RUN}) AND tier = 'High' AND top_offers != '[]' LIMIT 30",
    )
    by_id = {c["customerID"]: c for c in records}
    got = requests.post(f"{api}/recommend", json={"customers": [by_id[i] for i, _ in rows]}, timeout=120).json()
    for x, (cid, offers) in zip(got["results"], rows):
        assert x["customer_id"] == cid and [o["id"] for o in x["offers"]] == [o["id"] for o in json.loads(offers)]
        np.testing.assert_allclose(
            [o["expected_value"] for o in x["offers"]], [o["expected_value"] for o in json.loads(offers)], rtol=1e-6
        )


def test_every_prediction_is_logged_with_its_request_id(api, scored, records):
    r = requests.post(f"{api}/predict", json={"customers": records[10:13]})
    rid = r.headers["x-request-id"]
    assert rid == r.json()["request_id"]
    for _ in range(100):
        rows = store_rows(
            scored,
            "SELECT row, customer_id, endpoint, model_version, probability, tier "
            "FROM api_predictions WHERE request_id = ? ORDER BY row",
            rid,
        )
        if rows:
            break
        time.sleep(0.1)
    want = [(i, c["customerID"], "predict", champion(scored)) for i, c in enumerate(records[10:13])]
    assert [(row[0], row[1], row[2], row[3]) for row in rows] == want
    assert [(row[4], row[5]) for row in rows] == [(x["probability"], x["tier"]) for x in r.json()["results"]]


# ---- POST /feedback: what a customer said, analysed, stored, answered with the customer's churn ----


def feedback_count(workspace) -> int:
    "How many feedback notes the workspace's store holds."
    return store_rows(workspace, "SELECT COUNT(*) FROM feedback")[0][0]


def scored_customer(workspace, tier="High") -> tuple:
    "(customer id, probability, model version) of the first customer of `tier` in the latest published run."
    return store_rows(
        workspace,
        "SELECT customer_id, probability, model_version FROM customer_scores "
        f"WHERE run_id = ({LATEST_RUN}) AND tier = ? ORDER BY customer_id LIMIT 1",
        tier,
    )[0]


def test_feedback_is_analysed_stored_and_answered_with_the_customers_churn(api, scored):
    from churn_nb.run import store

    cid, p, version = scored_customer(scored)
    text = "Third outage this week and nobody calls back. Fix it or I cancel."
    sent = {"customer_id": cid, "text": f"  {text} ", "time": "2026-11-30T14:05:00+01:00"}
    r = requests.post(f"{api}/feedback", json=sent, timeout=60)
    assert r.status_code == 201, r.text[:500]
    got = r.json()
    assert r.headers["x-request-id"] == got["request_id"]
    assert (got["customer_id"], got["time"]) == (cid, "2026-11-30T13:05:00+00:00")  # when it was said, in UTC
    assert (got["category"], got["sentiment_label"]) == ("complaint", "negative"), got
    assert -1 <= got["sentiment"] < 0 and 0 < got["category_confidence"] <= 1
    assert got["topic"] is None  # no `churn-nb run feedback` in this workspace: no topic set
    run = store_rows(scored, LATEST_RUN)[0][0]
    want = {"probability": p, "tier": "High", "run_id": run, "model_version": version, "updated": False}
    assert got["churn"] == want
    saved = store.feedback_for(cid, f"sqlite:///{scored}/churn_nb.db")
    note = saved[saved.feedback_id == got["feedback_id"]].iloc[0]
    assert (note.text, note.category, note.sentiment_label, note.topic) == (text, "complaint", "negative", None)
    assert abs(note.sentiment - got["sentiment"]) <= 1e-6  # the answer has 6 decimals
    assert pd.Timestamp(note.time) == pd.Timestamp("2026-11-30 13:05")


def note(cid, **changes) -> dict:
    "A good feedback body for customer `cid`, with `changes` (DROP removes a field)."
    body = {"customer_id": cid, "text": "The app keeps logging me out.", **changes}
    return {k: v for k, v in body.items() if v is not DROP}


FEEDBACK_BAD = {  # name -> (body maker: customer id -> (bytes or JSON-able, headers), status, field, error words)
    "text missing": (lambda c: (note(c, text=DROP), None), 422, "text", "text is missing"),
    "text empty": (lambda c: (note(c, text=" \n "), None), 422, "text", "text is empty"),
    "text not a string": (lambda c: (note(c, text=["Fix it"]), None), 422, "text", "text must be text"),
    "text null": (lambda c: (note(c, text=None), None), 422, "text", "text must be text"),
    "text over 10,000 characters": (
        lambda c: (note(c, text="a" * 10_001), None),
        422,
        "text",
        "text has 10,001 characters, more than 10,000",
    ),
    "time not a date": (lambda c: (note(c, time="yesterday"), None), 422, "time", "ISO 8601"),
    "time no real day": (lambda c: (note(c, time="2026-02-30"), None), 422, "time", "ISO 8601"),
    "time a number": (lambda c: (note(c, time=20261130), None), 422, "time", "ISO 8601"),
    "unknown field": (lambda c: (note(c, author="me"), None), 422, "author", "not a field"),
    "customer id missing": (lambda c: (note(c, customer_id=DROP), None), 422, "customer_id", "customer_id is missing"),
    "customer id not an id": (lambda c: (note(c, customer_id=12.5), None), 422, "customer_id", "must be a customer id"),
    "a list as the body": (lambda c: ([note(c)], None), 422, None, "not a JSON object"),
    "malformed JSON": (lambda c: (b'{"customer_id": "x", "text": ', JSON), 400, None, "not valid JSON"),
    "not JSON": (lambda c: (b"text=hello", {"content-type": "text/plain"}), 415, None, "not JSON"),
    "unknown customer": (
        lambda c: (note("no-such-customer"), None),
        404,
        "customer_id",
        "customer 'no-such-customer' is in no published scoring run",
    ),
}


@pytest.mark.parametrize("name", list(FEEDBACK_BAD))
def test_bad_feedback_is_refused_naming_the_field_and_stores_nothing(api, scored, name):
    make, status, field, words = FEEDBACK_BAD[name]
    body, headers = make(scored_customer(scored)[0])
    before = feedback_count(scored)
    sent = {"json": body} if headers is None else {"data": body, "headers": headers}
    r = requests.post(f"{api}/feedback", **sent, timeout=60)
    assert r.status_code == status, r.text[:500]
    got = r.json()
    assert words in got["error"] and got["fix"] and got.get("field") == field, got
    assert "Traceback" not in r.text and 'File "' not in r.text
    assert feedback_count(scored) == before


def test_prediction_endpoints_answer_after_failed_feedback(api, records):
    for body in ({"customer_id": records[0]["customerID"]}, {"customer_id": "no-such-customer", "text": "Hello"}):
        assert requests.post(f"{api}/feedback", json=body, timeout=60).status_code in (404, 422)
    for endpoint in ("predict", "explain", "recommend"):
        r = requests.post(f"{api}/{endpoint}", json={"customer": records[0]}, timeout=60)
        assert r.status_code == 200, (endpoint, r.text[:500])
    assert requests.get(f"{api}/health").json()["status"] == "ok"


def test_docs_work_offline(api):
    html = requests.get(f"{api}/docs").text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html) + re.findall(r"url: ?'([^']+)'", html)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls  # nothing from a CDN
    assert all(requests.get(f"{api}{u}").status_code == 200 for u in urls)
    schema = requests.get(f"{api}/openapi.json").json()
    assert set(schema["paths"]) == {"/predict", "/explain", "/recommend", "/feedback", "/actions", "/health", "/model"}
    body = schema["paths"]["/actions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    action = body["properties"]["actions"]["items"]["properties"]["action"]
    assert {"call", "survey", "email"} < set(action["enum"])  # and the published run's offers
    contract = schema["components"]["schemas"]["Customer"]["properties"]["Contract"]
    assert contract["anyOf"][0]["enum"] == ["Month-to-month", "One year", "Two year"]


def test_schemathesis_finds_no_server_error(api, tmp_path):
    from schemathesis.core.warnings import SchemathesisWarning

    st = Path(sys.executable).parent / "schemathesis"
    out = subprocess.run(
        [
            str(st),
            "run",
            f"{api}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-time",
            "30",
            "--max-examples",
            "60",
            "--workers",
            "1",
            "--seed",
            "0",
            "--generation-database",
            "none",
            "--request-timeout",
            "60",
            "--phases",
            "examples,coverage,fuzzing",
            "--no-color",
            "--warnings",  # every warning but missing test data: fuzzed customer ids are never scored (/feedback: 404)
            ",".join(w.value for w in SchemathesisWarning if w != SchemathesisWarning.MISSING_TEST_DATA),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    # all seven operations, fuzzed and coverage-tested
    assert "Tested: 7" in out.stdout and "No issues found" in out.stdout, out.stdout[-2000:]


# ---- a champion trained with feedback features: requests without them, notes that score the customer again ----

TRAIN_WITH_FEEDBACK = """
from churn_nb.model.train import train
from churn_nb.run import pipeline
from churn_nb.run.feedback import training_feedback
from churn_nb.text.feedback import sample_feedback_path
texts, _ = training_feedback(str(sample_feedback_path()))  # the demo feedback (600 texts, 417 customers), analysed
train(models="logreg", cv_folds=3, automl=False, blend=False, feedback=texts, feedback_source="demo")
pipeline.score()
pipeline.segment()
pipeline.recommend()
"""
QUIET_UNTIL = "2026-11-30T12:00:00Z"  # before the demo's newest text: a note then moves no one else's windows


@pytest.fixture(scope="module")
def fb_ws(tmp_path_factory):
    "A workspace whose champion (logistic regression) reads the demo feedback's features, with a published scoring run."
    ws = tmp_path_factory.mktemp("feedback_champion")
    out = run_python(TRAIN_WITH_FEEDBACK, ws)
    assert out.returncode == 0, out.stderr[-3000:]
    return ws


@pytest.fixture(scope="module")
def fb_api(fb_ws):
    "The API on `fb_ws`, started by `churn-nb serve`; its base URL."
    proc, url = start_api(fb_ws)
    yield url
    stop_api(proc)


@pytest.fixture(scope="module")
def fb_records(fb_api):
    "customer id -> the customer as a request to `fb_api` (their own columns: no feedback column)."
    return {c["customerID"]: c for c in request_records(fb_api)}


def quiet_customers(workspace, tier) -> list:
    "The ids of the customers of `tier` in the latest published run who wrote nothing, in order."
    wrote = {r[0] for r in store_rows(workspace, "SELECT DISTINCT customer_id FROM feedback_analysis")}
    rows = store_rows(
        workspace,
        f"SELECT customer_id FROM customer_scores WHERE run_id = ({LATEST_RUN}) AND tier = ? ORDER BY customer_id",
        tier,
    )
    return [r[0] for r in rows if r[0] not in wrote]


def expected_tier(api, p) -> str:
    "The tier of probability `p` by the thresholds the API at `api` serves."
    th = requests.get(f"{api}/model").json()["tiers"]["thresholds"]
    return "High" if p >= th["high"] else "Medium" if p >= th["medium"] else "Low"


def test_a_feedback_champion_takes_the_customers_own_columns_and_answers_as_the_scoring_run(fb_api, fb_ws, fb_records):
    m = requests.get(f"{fb_api}/model").json()
    feedback_columns = m["input"]["feedback_columns"]
    assert feedback_columns[:2] == ["feedback_complaints_30d", "feedback_complaints_90d"], feedback_columns
    assert not [c for c in m["customer_schema"]["properties"] if c.startswith("feedback_")]
    assert not set(feedback_columns) & set(fb_records["7590-VHVEG"])
    stored = latest_scores(fb_ws)
    wrote = sorted({r[0] for r in store_rows(fb_ws, "SELECT DISTINCT customer_id FROM feedback_analysis")})
    sample = wrote[::10] + quiet_customers(fb_ws, "High")[:10]  # 42 who wrote, 10 who did not
    r = requests.post(f"{fb_api}/explain", json={"customers": [fb_records[i] for i in sample]}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    got = r.json()["results"]
    assert max(abs(x["probability"] - stored[x["customer_id"]][0]) for x in got) <= 1e-9
    assert [x["tier"] for x in got] == [stored[x["customer_id"]][1] for x in got]
    assert [x["top_reasons"] for x in got] == [json.loads(stored[x["customer_id"]][2]) for x in got]
    assert any(r["feature"].startswith("feedback_") for x in got for r in x["top_reasons"])  # feedback counted
    for i in sample[:3] + sample[-2:]:  # one customer per request: the same
        x = requests.post(f"{fb_api}/predict", json={"customer": fb_records[i]}).json()["results"][0]
        assert abs(x["probability"] - stored[i][0]) <= 1e-9 and x["tier"] == stored[i][1]
    no_id = {k: v for k, v in fb_records[wrote[0]].items() if k != "customerID"}
    nobody = {**no_id, "customerID": "nobody-wrote-this"}
    p = [
        requests.post(f"{fb_api}/predict", json={"customer": c}).json()["results"][0]["probability"]
        for c in (no_id, nobody)
    ]
    assert p[0] == p[1] and abs(p[0] - stored[wrote[0]][0]) > 1e-6  # without an id: as a customer who wrote nothing


def test_a_feedback_field_in_a_request_is_refused(fb_api, fb_records):
    sent = {**fb_records["7590-VHVEG"], "feedback_complaints_30d": 3}
    for endpoint in ("predict", "explain"):
        r = requests.post(f"{fb_api}/{endpoint}", json={"customer": sent}, timeout=60)
        assert r.status_code == 422, r.text[:500]
        got = r.json()
        assert got["field"] == "customer.feedback_complaints_30d" and "is a feedback feature" in got["error"], got
        assert "customerID" in got["allowed"] and "feedback_complaints_30d" not in got["allowed"]


def test_feedback_scores_the_customer_again_when_the_champion_reads_feedback(fb_api, fb_ws, fb_records):
    cid = quiet_customers(fb_ws, "Low")[0]
    stored, before = latest_scores(fb_ws)[cid], feedback_count(fb_ws)
    text = "Third outage this week and nobody calls back. I am cancelling my contract."
    r = requests.post(f"{fb_api}/feedback", json={"customer_id": cid, "text": text, "time": QUIET_UNTIL}, timeout=60)
    assert r.status_code == 201, r.text[:500]
    got = r.json()
    churn = got["churn"]
    assert (got["category"], feedback_count(fb_ws)) == ("complaint", before + 1)
    assert (churn["updated"], churn["model_version"], churn["run_id"]) == (
        True,
        champion(fb_ws),
        store_rows(fb_ws, LATEST_RUN)[0][0],
    )
    assert churn["previous_probability"] == stored[0] and churn["probability"] > stored[0] + 0.01, churn
    assert churn["tier"] == expected_tier(fb_api, churn["probability"]), churn
    assert churn["reasons"] and all(isinstance(t, str) for t in churn["reasons"])
    assert any("complaint" in t.lower() for t in churn["reasons"]), churn["reasons"]
    x = requests.post(f"{fb_api}/explain", json={"customer": fb_records[cid]}).json()["results"][0]
    assert abs(x["probability"] - churn["probability"]) <= 1e-9 and x["tier"] == churn["tier"]  # the note counts now
    assert [t["text"] for t in x["top_reasons"]] == churn["reasons"]  # the words of /explain
    for _ in range(100):  # the new score is in the prediction log, as the scoring endpoints' are
        logged = store_rows(
            fb_ws,
            "SELECT endpoint, customer_id, probability FROM api_predictions WHERE request_id = ?",
            got["request_id"],
        )
        if logged:
            break
        time.sleep(0.1)
    assert logged == [("feedback", cid, churn["probability"])]


def test_a_failed_rescore_keeps_the_note_and_answers_the_stored_score(fb_api, fb_ws):
    cid = quiet_customers(fb_ws, "Medium")[0]
    stored, before = latest_scores(fb_ws)[cid], feedback_count(fb_ws)
    mart = Path(fb_ws) / "marts" / "runs" / store_rows(fb_ws, LATEST_RUN)[0][0] / "customers.parquet"
    kept = mart.read_bytes()
    mart.write_bytes(b"not Parquet")  # the newest marts cannot be read
    try:
        note = {"customer_id": cid, "text": "The router drops every evening.", "time": QUIET_UNTIL}
        r = requests.post(f"{fb_api}/feedback", json=note, timeout=60)
    finally:
        mart.write_bytes(kept)
    assert r.status_code == 201, r.text[:500]
    churn = r.json()["churn"]
    assert (churn["updated"], churn["probability"], churn["tier"]) == (False, stored[0], stored[1])
    assert "not scored again" in churn["problem"] and "the note is stored" in churn["problem"], churn
    assert feedback_count(fb_ws) == before + 1
    log = "".join(tail(f, None) for f in Path(fb_ws).glob("api-*.log"))
    assert "Traceback" in log and "Parquet" in log, log[-2000:]
    assert requests.get(f"{fb_api}/health").json()["status"] == "ok"


# ---- a champion swap under load: no request fails, answers move from the old version to the new one ----

TRAIN_TWO = """
from churn_nb.model.train import train
from churn_nb.model.tracking import ensure_store
for models in ("logreg", "hgb"): train(models=models, automl=False, cv_folds=2)   # two versions that answer differently
ensure_store().set_registered_model_alias("churn", "champion", "1")
"""


def test_champion_swap_under_load(tmp_path):
    trained = run_python(TRAIN_TWO, tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    proc, url = start_api(tmp_path)
    try:
        schema = requests.get(f"{url}/model").json()
        assert schema["version"] == "1"
        customer = {
            "customerID": "7590-VHVEG",
            "gender": "Female",
            "SeniorCitizen": 0,
            "Partner": "Yes",
            "Dependents": "No",
            "tenure": 1,
            "PhoneService": "No",
            "MultipleLines": "No phone service",
            "InternetService": "DSL",
            "OnlineSecurity": "No",
            "OnlineBackup": "Yes",
            "DeviceProtection": "No",
            "TechSupport": "No",
            "StreamingTV": "No",
            "StreamingMovies": "No",
            "Contract": "Month-to-month",
            "PaperlessBilling": "Yes",
            "PaymentMethod": "Electronic check",
            "MonthlyCharges": 29.85,
            "TotalCharges": 29.85,
        }
        answers, failures, stop = [], [], threading.Event()

        def load():
            with requests.Session() as s:
                while not stop.is_set():
                    body = {"customer": customer} if len(answers) % 2 else {"customers": [customer] * 50}
                    try:
                        r = s.post(f"{url}/predict", json=body, timeout=30)
                        if r.status_code == 200:
                            answers.append((r.json()["model_version"], r.json()["results"][0]["probability"]))
                        else:
                            failures.append((r.status_code, r.text[:300]))
                    except requests.RequestException as e:
                        failures.append(repr(e))

        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(3)
        client(tmp_path).set_registered_model_alias("churn", "champion", "2")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and requests.get(f"{url}/model").json()["version"] != "2":
            time.sleep(0.25)
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(60)
        assert not failures, failures[:5]
        versions = [v for v, _ in answers]
        assert versions.count("1") > 20 and versions.count("2") > 20, (versions.count("1"), versions.count("2"))
        assert requests.get(f"{url}/model").json()["version"] == "2"
        assert requests.get(f"{url}/health").json()["status"] == "ok"
        p = {v: {round(q, 12) for w, q in answers if w == v} for v in ("1", "2")}
        # each version answers the same for the same customer; the two differ
        assert len(p["1"]) == 1 and len(p["2"]) == 1 and p["1"] != p["2"]
    finally:
        stop_api(proc)
