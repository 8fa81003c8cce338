"""`churn-nb run train` end to end on the bundled sample, as a new user runs it: baselines and H2O AutoML with the
default settings. The training is the first step of the shared `scored` workspace (`churn-nb run pipeline` with the
defaults, as `make up` runs it)."""

import json, re, subprocess, sys
import pytest
from conftest import all_runs, client


@pytest.fixture(scope="module")
def trained(scored):
    return scored


def train_runs(ws):
    "The workspace's training runs (those with a gate decision), newest first."
    return [r for r in all_runs(ws) if "churn_nb.gate.decision" in r.data.tags]


def test_run_is_finished_logged_and_registered(trained):
    (run,) = train_runs(trained)
    assert run.info.status == "FINISHED"
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["churn_nb.gate.decision"] == "champion" and "no champion yet" in tags["churn_nb.gate.reason"]
    assert params["seed"] == "0" and params["models"] == "logreg,hgb,hgb_default" and params["target"] == "Churn"
    assert (
        tags["dataset.rows"] == "7043"
        and len(tags["dataset.sha256"]) == 64
        and tags["dataset.positive_rate"] == "0.26537"
    )
    assert (
        params["automl"] == "True" and params["automl.max_models"] == "0" and params["blend"] == "True"
    )  # 0: by table size
    assert (
        metrics["automl.parity_max_abs_diff"] <= 1e-6 and metrics["automl.models"] >= 8
    )  # 5,634 training rows: 8 base models
    for model in ("logreg", "hgb", "hgb_default", "h2o_automl", "blend"):
        for m in ("roc_auc", "pr_auc", "log_loss", "brier", "lift_top_decile"):
            assert f"{model}.cv_{m}" in metrics and f"{model}.holdout_{m}" in metrics
    c = client(trained)
    paths = {a.path for d in ("", "plots", "dataset", "report") for a in c.list_artifacts(run.info.run_id, d or None)}
    assert {
        "leaderboard.csv",
        "leaderboard.html",
        "gate.json",
        "plots/roc.png",
        "plots/pr.png",
        "plots/calibration.png",
        "plots/lift.png",
        "dataset/fingerprint.json",
        "dataset/spec.json",
        "dataset/split.json",
        "report/train.ipynb",
        "report/train.html",
    } <= paths
    automl = {a.path for a in c.list_artifacts(run.info.run_id, "automl")}
    assert {
        "automl/leaderboard.csv",
        "automl/leaderboard.html",
        "automl/info.json",
        "automl/holdout_predictions.csv",
    } <= automl
    version = c.get_model_version_by_alias("churn", "champion")
    assert version.tags["churn_nb.run_id"] == run.info.run_id
    logged = {m.name for m in c.search_logged_models([run.info.experiment_id])}
    assert {"logreg", "hgb", "hgb_default", "h2o_automl", "blend"} <= logged


def test_report_is_readable_offline(trained):
    (html,) = list((trained / "reports" / "runs").glob("*-train/train.html"))
    text = html.read_text()
    assert not re.search(r'<script[^>]+src="https?://', text), "the report must not load scripts from the network"
    assert (
        "Leaderboard" in text
        and "Holdout curves" in text
        and "Champion gate" in text
        and "data:image/png;base64" in text
    )
    assert "Traceback" not in text


FRESH_PROCESS = r"""
import json, sys, mlflow, pandas as pd
from sklearn.metrics import roc_auc_score
from churn_nb.data import sample_path
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model("models:/churn@champion")
raw = pd.read_csv(sample_path())          # raw rows: TotalCharges as text with blanks, no encoding
run_id = model.metadata.run_id
split = json.loads(open(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dataset/split.json")).read())
hold = raw[raw.customerID.isin(split["holdout_ids"])]
p = model.predict(hold)["churn_probability"]
candidate = model.metadata.metadata["churn_nb"]["candidate"]
h2o_gap = None
if candidate == "h2o_automl":
    preds_file = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="automl/holdout_predictions.csv")
    in_cluster = pd.read_csv(preds_file).set_index("id").loc[hold.customerID, "in_cluster"].to_numpy()
    h2o_gap = float(abs(in_cluster - p.to_numpy()).max())
odd = hold.head(3).copy()
odd["tenure"] = [1.0, 2.0, 3.0]
odd["TotalCharges"] = [" ", 20.5, "30"]
auc = roc_auc_score(hold.Churn.eq("Yes"), p)
odd_p = model.predict(odd)["churn_probability"].tolist()
loaded_h2o = "h2o" in sys.modules
print(json.dumps(dict(rows=len(hold), auc=auc, lo=float(p.min()), hi=float(p.max()), odd=odd_p, h2o=loaded_h2o,
                      candidate=candidate, h2o_gap=h2o_gap)))
"""


def test_champion_scores_raw_rows_in_a_fresh_process(trained):
    r = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, f"sqlite:///{trained}/mlflow.db"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["rows"] == 1409 and 0 <= out["lo"] <= out["hi"] <= 1
    assert out["auc"] >= 0.84, out
    assert len(out["odd"]) == 3 and all(0 <= p <= 1 for p in out["odd"])
    assert not out["h2o"], "scoring must not need the h2o package or a cluster"
    if out["candidate"] == "h2o_automl":
        assert out["h2o_gap"] <= 1e-6, out  # the exported H2O model scores as the cluster did
