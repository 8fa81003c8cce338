"""H2O AutoML inside training: killed or interrupted runs leave no JVM and move no alias; parallel runs get their own
clusters."""

import os, signal, time
import psutil
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


def test_two_automl_trainings_at_once_get_their_own_clusters(tmp_path):
    procs = [start_churn_nb("run", "train", *SMALL, "-p", "seed", str(s), workspace=tmp_path) for s in (0, 1)]
    results = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    runs = all_runs(tmp_path)
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]
    import json

    clusters = [
        json.loads(
            open(
                client(tmp_path).download_artifacts(r.info.run_id, "automl/info.json", str(tmp_path / f"dl{i}"))
            ).read()
        )["cluster"]
        for i, r in enumerate(runs)
        if not os.makedirs(tmp_path / f"dl{i}", exist_ok=True)
    ]
    assert clusters[0]["name"] != clusters[1]["name"] and clusters[0]["url"] != clusters[1]["url"]
    assert our_jvms(tmp_path) == []
