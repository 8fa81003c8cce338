"""Shared helpers: run `churn-nb` in a scratch workspace and read that workspace's real MLflow store."""
import os, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHURN_NB = str(Path(sys.executable).parent/"churn-nb")


def churn_nb(*args, workspace, timeout=900, env=None):
    "Run `churn-nb *args` with CHURN_NB_HOME=workspace; return the CompletedProcess."
    full_env = {**os.environ, "CHURN_NB_HOME": str(workspace), **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([CHURN_NB, *args], env=full_env, capture_output=True, text=True, timeout=timeout)


def start_churn_nb(*args, workspace):
    "Start `churn-nb *args` in the background (for interrupting it)."
    env = {**os.environ, "CHURN_NB_HOME": str(workspace)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen([CHURN_NB, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def client(workspace):
    "An MlflowClient on the workspace's SQLite store."
    from mlflow import MlflowClient
    uri = f"sqlite:///{Path(workspace).resolve()}/mlflow.db"
    return MlflowClient(uri, uri)


def all_runs(workspace):
    "Every run in every experiment of the workspace's store, newest first."
    c = client(workspace)
    return c.search_runs([e.experiment_id for e in c.search_experiments()], order_by=["attributes.start_time DESC"])


def champion(workspace):
    "The version `models:/churn@champion` points to, or None."
    from mlflow.exceptions import MlflowException
    try: return str(client(workspace).get_model_version_by_alias("churn", "champion").version)
    except MlflowException: return None


def wait_for_running_run(workspace, timeout=180):
    "Wait until a run is RUNNING in the workspace's store; return it."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (Path(workspace)/"mlflow.db").exists():
            running = [r for r in all_runs(workspace) if r.info.status == "RUNNING"]
            if running: return running[0]
        time.sleep(0.5)
    raise AssertionError("no RUNNING run appeared")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    "A scratch workspace, also set for in-process use of churn_nb."
    monkeypatch.setenv("CHURN_NB_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def scored(tmp_path_factory):
    "A workspace where `churn-nb run pipeline` ran on the sample with the defaults, as `make up` runs it; shared by the training, scoring, API and dashboard tests. Never move its champion alias."
    ws = tmp_path_factory.mktemp("scored")
    out = churn_nb("run", "pipeline", workspace=ws, timeout=1500)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return ws
