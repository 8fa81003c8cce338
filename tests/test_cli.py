"""The `churn-nb` command as a user meets it: help, refused parameters, doctor, the MLflow UI service."""

import socket, urllib.request
from pathlib import Path
import pytest
from conftest import churn_nb, free_port


def test_help_lists_the_commands(tmp_path):
    r = churn_nb("--help", workspace=tmp_path)
    assert r.returncode == 0
    for command in ("run", "schedule", "smoke", "doctor", "ui", "serve", "dashboard", "stop", "bench", "offers"):
        assert command in r.stdout
    bench = churn_nb("bench", "--help", workspace=tmp_path)
    assert "tables" in bench.stdout and "--tables" in bench.stdout


def test_unknown_parameter_is_refused_before_a_kernel_starts(tmp_path):
    r = churn_nb("run", "train", "-p", "__import__('os').system('touch pwned')", "1", workspace=tmp_path)
    assert r.returncode == 1
    assert "unknown parameter" in r.stderr and "Fix: use one of: data, query, target" in r.stderr
    assert (
        not (tmp_path / "reports").exists()
        and not (tmp_path / "mlflow.db").exists()
        and not (tmp_path / "pwned").exists()
    )


def test_wrongly_typed_parameter_is_refused(tmp_path):
    r = churn_nb("run", "train", "-p", "seed", "zero", workspace=tmp_path)
    assert r.returncode == 1 and "parameter 'seed' expects int, got 'zero'" in r.stderr


def test_unknown_notebook_is_refused(tmp_path):
    r = churn_nb("run", "trian", workspace=tmp_path)
    assert r.returncode == 1 and "no scheduled notebook 'trian'" in r.stderr
    scheduled = sorted(p.stem for p in (Path(__file__).parents[1] / "scheduled").glob("*.ipynb"))
    assert f"choose one of: {', '.join(scheduled)}" in r.stderr


def test_doctor_checks_java_workspace_and_store(tmp_path):
    r = churn_nb("doctor", workspace=tmp_path)
    assert "ok   java: java 17" in r.stdout, r.stdout
    assert f"ok   workspace: {tmp_path}" in r.stdout and "ok   MLflow store: sqlite:///" in r.stdout


def test_doctor_explains_a_wrong_java(tmp_path):
    r = churn_nb("doctor", workspace=tmp_path, env={"JAVA_HOME": str(tmp_path / "no-jdk")})
    assert r.returncode == 1
    assert "BAD  java: no working java" in r.stdout and "fix: install OpenJDK 17" in r.stdout


def test_doctor_explains_a_busy_port(tmp_path):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 5055))
            s.listen()
        except OSError:
            pytest.skip("port 5055 is already taken on this machine")
        r = churn_nb("doctor", workspace=tmp_path)
    assert r.returncode == 1
    assert "BAD  port 5055 (api): 127.0.0.1:5055 in use by another program" in r.stdout
    assert "fix: stop the program listening there" in r.stdout


def test_mlflow_ui_starts_in_the_background_on_loopback_and_stops(tmp_path):
    port = free_port()
    r = churn_nb("ui", "--background", "--port", str(port), workspace=tmp_path, timeout=180)
    try:
        assert r.returncode == 0, r.stderr[-2000:]
        assert f"MLflow UI: http://127.0.0.1:{port}" in r.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as resp:
            assert resp.status == 200
        pid = int((tmp_path / ".run" / "mlflow-ui.pid").read_text())
        import psutil

        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        listening = {c.laddr.ip for p in procs for c in p.net_connections("inet") if c.status == "LISTEN"}
        assert listening == {"127.0.0.1"}, listening
    finally:
        stop = churn_nb("stop", workspace=tmp_path)
    assert "MLflow UI: stopped" in stop.stdout
    from churn_nb.cli import port_free

    assert port_free(port), "the UI still listens after `churn-nb stop`"
