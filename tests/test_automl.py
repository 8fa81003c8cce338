"""H2O AutoML inside training: killed or interrupted runs leave no JVM and move no alias; parallel runs get their own
clusters and pass the champion gate one at a time."""

import json, os, signal, time
from pathlib import Path
import pandas as pd
import psutil
import pytest
from conftest import all_runs, champion, churn_nb, client, start_churn_nb, wait_for_running_run

SMALL = ["-p", "models", "logreg", "-p", "cv_folds", "2", "-p", "max_models", "2"]


def our_jvms(workspace):
    "Java processes whose command line points into `workspace` (H2O keeps its ice/log folders there)."
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if "java" in (p.info["name"] or "") and str(workspace) in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            pass
    return found


def wait_for_jvm(workspace, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if our_jvms(workspace):
            return our_jvms(workspace)
        time.sleep(0.5)
    raise AssertionError("no H2O JVM appeared")


def train_until_automl(ws, seed: int) -> tuple:
    "(process, MLflow run) of a `churn-nb run train` in `ws`, once its AutoML has been running for a few seconds."
    proc = start_churn_nb("run", "train", *SMALL, "-p", "seed", str(seed), workspace=ws)
    run = wait_for_running_run(ws)
    wait_for_jvm(ws)
    time.sleep(3)
    return proc, run


def test_kernel_killed_during_automl_then_next_run_cleans_up(ws_with_champion):
    ws = ws_with_champion
    proc, run = train_until_automl(ws, seed=1)
    os.kill(int(run.data.tags["churn_nb.pid"]), signal.SIGKILL)
    proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert client(ws).get_run(run.info.run_id).info.status == "KILLED"
    assert champion(ws) == "1"
    r = churn_nb("run", "train", *SMALL, "-p", "seed", "2", workspace=ws)  # the next start cleans up and succeeds
    assert r.returncode == 0, r.stderr[-3000:]
    assert our_jvms(ws) == [], "a JVM of ours outlived the runs"
    assert all_runs(ws)[0].info.status == "FINISHED"
    assert not [x for x in all_runs(ws) if x.info.status == "RUNNING"]


def test_sigterm_during_automl_stops_the_jvm(ws_with_champion):
    ws = ws_with_champion
    proc, run = train_until_automl(ws, seed=3)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert client(ws).get_run(run.info.run_id).info.status == "KILLED"
    assert champion(ws) == "1"
    deadline = time.monotonic() + 30
    while our_jvms(ws) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert our_jvms(ws) == []


def leaderboard(workspace, run):
    "The AutoML leaderboard a training run logged."
    folder = Path(workspace) / f"dl-{run.info.run_id}"
    folder.mkdir(exist_ok=True)
    return pd.read_csv(client(workspace).download_artifacts(run.info.run_id, "automl/leaderboard.csv", str(folder)))


def test_two_identical_trainings_at_once_on_a_fresh_store(tmp_path):
    """Two AutoML trainings with the same seed start together on a fresh store: each gets its own cluster, both
    finish, AutoML builds the same models with the same scores, and the gate lets one at a time through: the first
    becomes champion, the second (no better) challenger."""
    procs = [start_churn_nb("run", "train", *SMALL, "-p", "seed", "0", workspace=tmp_path) for _ in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    runs = all_runs(tmp_path)[::-1]  # oldest first
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"] and len({r.info.experiment_id for r in runs}) == 1
    info = [
        json.loads(
            (Path(client(tmp_path).download_artifacts(r.info.run_id, "automl/info.json", str(tmp_path)))).read_text()
        )
        for r in runs
    ]
    assert (
        info[0]["cluster"]["name"] != info[1]["cluster"]["name"]
        and info[0]["cluster"]["url"] != info[1]["cluster"]["url"]
    )
    assert our_jvms(tmp_path) == []
    first, second = (leaderboard(tmp_path, r) for r in runs)
    algo = lambda board: board.model_id.str.extract(r"^([A-Za-z]+(?:_[A-Za-z]+)*?)_\d")[0].tolist()
    assert algo(first) == algo(second), "same seed and max_models: the same models, in the same order"
    for col in ("auc", "logloss", "aucpr"):
        assert first[col].tolist() == pytest.approx(second[col].tolist(), abs=1e-9)
    decisions = sorted(r.data.tags["churn_nb.gate.decision"] for r in runs)
    assert decisions == ["challenger", "champion"], "the gate let both runs read 'no champion yet'"
    later = next(r for r in runs if r.data.tags["churn_nb.gate.decision"] == "challenger")
    reason, scores = later.data.tags["churn_nb.gate.reason"], later.data.metrics
    assert "<=" in reason, reason
    if later.data.tags["churn_nb.fitted_on"] == "all":  # the champion was refitted on every row, this holdout included
        assert reason.endswith("so its score is optimistic)"), reason
        assert scores["gate_champion_roc_auc"] >= scores["gate_candidate_roc_auc"]
    else:  # an H2O champion keeps AutoML's fit: the same model, the same score
        assert scores["gate_candidate_roc_auc"] == pytest.approx(scores["gate_champion_roc_auc"], abs=1e-9)
    first_in = next(r for r in runs if r is not later)
    assert (
        client(tmp_path).get_model_version_by_alias("churn", "champion").tags["churn_nb.run_id"] == first_in.info.run_id
    )
    assert client(tmp_path).get_model_version_by_alias("churn", "challenger").version != champion(tmp_path)
