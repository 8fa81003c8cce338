"""Monitoring every scoring run, end to end on a copy of the shared `scored` workspace: the pipeline's own scoring of
the sample raised no alert; a table with one shifted column raises a feature-drift alert for that column only (store,
MLflow); a bad thresholds file is refused before anything is scored."""

import numpy as np
import pandas as pd
import pytest
from conftest import all_runs, churn_nb, copy_workspace, use_workspace


def score_runs(ws) -> list:
    "The workspace's finished score runs, newest first."
    return [r for r in all_runs(ws) if r.data.tags.get("churn_nb.kind") == "score" and r.info.status == "FINISHED"]


@pytest.fixture(scope="module")
def ws(scored, tmp_path_factory):
    return copy_workspace(scored, tmp_path_factory.mktemp("monitoring") / "ws")


def test_the_pipelines_scoring_of_the_training_table_raised_no_alert(ws):
    from churn_nb.monitor.health import alerts

    run = score_runs(ws)[0]
    assert run.data.metrics["monitoring.alerts"] == 0, run.data.metrics
    assert run.data.metrics["monitoring.max_psi"] < 0.01  # the table the champion was trained on
    with use_workspace(ws):
        assert alerts().empty


def test_a_shifted_column_raises_a_drift_alert_for_it_alone(ws):
    from churn_nb.data import load_sample
    from churn_nb.model.registry import load_champion
    from churn_nb.monitor.health import alerts

    with use_workspace(ws):
        spec = load_champion().spec
    table = load_sample()
    shifted = max(spec.numeric, key=lambda c: table[c].nunique())  # the champion's most varied number, whatever it is
    x = pd.to_numeric(table[shifted], errors="coerce")
    table[shifted] = (x + 2 * np.nanstd(x)).round(2)
    table.to_csv(ws / "shifted.csv", index=False)
    out = churn_nb("run", "score", "-p", "data", str(ws / "shifted.csv"), workspace=ws)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    run = score_runs(ws)[0]
    assert run.data.metrics["monitoring.alerts"] >= 1, run.data.metrics
    with use_workspace(ws):
        raised = alerts()
    assert set(raised.run_id) == {run.info.run_id}
    drifted = raised[raised.kind == "feature drift"]
    assert drifted.subject.tolist() == [shifted], raised[["kind", "subject", "value"]]
    assert drifted.value.iloc[0] > 0.25 and "PSI" in drifted.message.iloc[0]


def test_bad_thresholds_are_refused_before_anything_is_scored(ws):
    (ws / "bad.yml").write_text("drift:\n  feature_psi: -1\n")
    before = len(score_runs(ws))
    out = churn_nb("run", "score", "-p", "monitoring", str(ws / "bad.yml"), workspace=ws)
    assert out.returncode != 0
    assert "drift.feature_psi is -1, not a number ≥ 0" in out.stdout + out.stderr
    assert len(score_runs(ws)) == before


def test_a_sensitive_column_the_table_lacks_is_refused_in_the_operators_own_file(ws):
    from churn_nb.run import store

    (ws / "mine.yml").write_text("fairness:\n  sensitive: [gender, religion]\n")
    before, latest = len(score_runs(ws)), (ws / "marts" / "latest.json").read_text()
    out = churn_nb("run", "score", "-p", "monitoring", str(ws / "mine.yml"), workspace=ws)
    assert out.returncode != 0
    assert "the sensitive column 'religion' is not in the table. Fix: name one of the table's columns" in out.stderr
    assert len(score_runs(ws)) == before and (ws / "marts" / "latest.json").read_text() == latest  # nothing published
    with use_workspace(ws):
        assert store.latest_scores().run_id.nunique() == 1
