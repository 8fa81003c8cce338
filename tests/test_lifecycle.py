"""Runs that are interrupted or killed never end FINISHED and never leave an alias moved (parallel runs on a fresh
store: tests/test_automl.py)."""

import os, signal, time
from conftest import all_runs, champion, churn_nb, client, run_python, start_churn_nb, wait_for_running_run


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_sigterm_during_training_ends_killed(ws_with_champion):
    ws = ws_with_champion
    proc = start_churn_nb("run", "train", "-p", "seed", "1", "-p", "automl", "false", workspace=ws)
    run = wait_for_running_run(ws)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code != 0 and "train failed" in err
    after = client(ws).get_run(run.info.run_id)
    assert after.info.status == "KILLED", after.info.status
    assert "SIGTERM" in after.data.tags["churn_nb.error"]
    assert champion(ws) == "1"
    assert not [r for r in all_runs(ws) if r.info.status == "RUNNING"]


def test_kernel_killed_during_training_ends_killed(ws_with_champion):
    ws = ws_with_champion
    proc = start_churn_nb("run", "train", "-p", "seed", "2", "-p", "automl", "false", workspace=ws)
    run = wait_for_running_run(ws)
    os.kill(int(run.data.tags["churn_nb.pid"]), signal.SIGKILL)
    code, out, err = finish(proc)
    assert code != 0 and "train failed" in err and "Traceback" not in err
    after = client(ws).get_run(run.info.run_id)
    assert after.info.status == "KILLED" and "killed" in after.data.tags["churn_nb.error"]
    assert champion(ws) == "1"


KILLED_AFTER_ALIAS_MOVE = r"""
import os, signal, mlflow
from churn_nb.data import load_sample, infer_spec, split_holdout, target_vector
from churn_nb.model.baselines import logistic_regression
from churn_nb.model.tracking import tracked_run, log_churn_model, register_through_gate, alias_version, ensure_store
df = load_sample(); spec = infer_spec(df); split = split_holdout(df, spec, seed=3)
model = logistic_regression(spec).fit(split.train, target_vector(split.train, spec))
with tracked_run("churn", "killed during registration"):
    info = log_churn_model(model, spec, split.train, "logreg")
    decision = register_through_gate(info.model_uri, 0.999, split.holdout, target_vector(split.holdout, spec))
    assert alias_version("champion", ensure_store()).version == decision.version
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_right_after_moving_the_alias_is_rolled_back_at_next_start(ws_with_champion):
    ws = ws_with_champion
    r = run_python(KILLED_AFTER_ALIAS_MOVE, ws, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert champion(ws) == "2", "the dead run had moved the alias"
    dead = [x for x in all_runs(ws) if x.info.status == "RUNNING"]
    assert len(dead) == 1
    r = churn_nb(
        "run", "train", "-p", "models", "logreg", "-p", "cv_folds", "2", "-p", "automl", "false", workspace=ws
    )  # the next start reaps it
    assert r.returncode == 0, r.stderr[-2000:]
    reaped = client(ws).get_run(dead[0].info.run_id)
    assert (
        reaped.info.status == "KILLED"
        and "alias 'champion' restored to version 1" in reaped.data.tags["churn_nb.error"]
    )
    assert champion(ws) == "1"
    assert not [x for x in all_runs(ws) if x.info.status == "RUNNING"]
