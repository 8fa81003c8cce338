"""One home for what several test files share: the environment of a process working in a workspace, the `churn-nb`
command, the workspace's real MLflow store, the API and dashboard servers started as users start them, the browser,
and the workspaces (scratch, small champion, shared scored). tests/README.md lists every fixture with its scope and
cost."""

import os, shutil, signal, subprocess, sys, textwrap, time
from contextlib import contextmanager
from pathlib import Path
import pytest
import requests
from churn_nb.bench.dashboard import CHROMIUM_FLAGS  # the benchmark's headless flags: one list for both
from churn_nb.config import HOST, free_port, port_listening, stop_tree
from churn_nb.model.tracking import kept_environment

ROOT = Path(__file__).resolve().parents[1]
CHURN_NB = str(Path(sys.executable).parent / "churn-nb")  # the console script a `pip install` writes
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's chromium (`make browser`), never a download
SHOTS = ROOT / "reports" / "screenshots"
WAIT = 90_000  # ms: a dashboard page's first load waits for its kernel to read the run


# ---- the environment a process sees ----


def workspace_env(workspace, **extra) -> dict:
    "os.environ for a process working in `workspace`: CHURN_NB_HOME set, MLFLOW_TRACKING_URI unset (its own store)."
    env = {**os.environ, "CHURN_NB_HOME": str(workspace), **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@contextmanager
def use_workspace(workspace):
    "Inside the block, churn_nb in this process works in `workspace` (as `workspace_env`); the old values come back."
    with kept_environment("CHURN_NB_HOME", "MLFLOW_TRACKING_URI"):
        os.environ["CHURN_NB_HOME"] = str(workspace)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        yield Path(workspace)


MLFLOW_PATHS = [  # (table, column) of the workspace's mlflow.db that hold absolute paths into the workspace
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
    ("tags", "value"),
]


def copy_workspace(src, dst) -> Path:
    """A copy of workspace `src` at `dst` without its reports, H2O folders, locks and service pid files; its MLflow
    store points to the copy's own artifacts, so what a test writes there never touches `src`."""
    import sqlite3

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("reports", "h2o", "*.lock", ".run"))
    old, new = str(Path(src).resolve()), str(Path(dst).resolve())
    with sqlite3.connect(Path(dst) / "mlflow.db") as con:
        for table, column in MLFLOW_PATHS:
            con.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
    return Path(dst)


# ---- the `churn-nb` command and Python in a fresh process ----


def churn_nb(*args, workspace, timeout=900, env=None):
    "Run `churn-nb *args` with CHURN_NB_HOME=workspace; return the CompletedProcess."
    env = workspace_env(workspace, **(env or {}))
    return subprocess.run([CHURN_NB, *args], env=env, capture_output=True, text=True, timeout=timeout)


def start_churn_nb(*args, workspace):
    "Start `churn-nb *args` in the background (for interrupting it)."
    return subprocess.Popen(
        [CHURN_NB, *args], env=workspace_env(workspace), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def run_python(code, workspace, timeout=600):
    "Run Python `code` (dedented) in a fresh process working in `workspace`; return the CompletedProcess."
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=workspace_env(workspace),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---- the workspace's real MLflow store ----


def store_url(workspace) -> str:
    "The SQLAlchemy URL of the workspace's customer store (SQLite, as `config.store_url` makes it)."
    return f"sqlite:///{Path(workspace).resolve()}/churn_nb.db"


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

    try:
        return str(client(workspace).get_model_version_by_alias("churn", "champion").version)
    except MlflowException:
        return None


def wait_for_running_run(workspace, timeout=180):
    "Wait until a run is RUNNING in the workspace's store; return it."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (Path(workspace) / "mlflow.db").exists():
            running = [r for r in all_runs(workspace) if r.info.status == "RUNNING"]
            if running:
                return running[0]
        time.sleep(0.5)
    raise AssertionError("no RUNNING run appeared")


# ---- servers, started as users start them ----


def tail(log, n=3000) -> str:
    "The last `n` characters of a server's log file (all of it when `n` is None)."
    text = Path(log).read_text(errors="replace") if Path(log).exists() else ""
    return text if n is None else text[-n:]


def start_server(args, workspace, log, **env) -> subprocess.Popen:
    "Start `churn-nb *args` for `workspace` in a session of its own, its output to `log`."
    assert Path(CHURN_NB).is_file(), f"the `churn-nb` console script is missing at {CHURN_NB}. Fix: pip install -e ."
    with open(log, "ab") as out:
        return subprocess.Popen(
            [CHURN_NB, *args],
            env=workspace_env(workspace, **env),
            cwd=Path(log).parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_until_ready(ready, proc, log, what, seconds):
    "Poll `ready()` until true; fail with the log's tail when `proc` exits or `seconds` pass (the server is stopped)."
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"`{what}` exited with {proc.returncode}: {tail(log)}"
        if ready():
            return
        time.sleep(0.25)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise AssertionError(f"`{what}` did not answer within {seconds} s: {tail(log)}")


def answers_health(url) -> bool:
    "Whether GET `url`/health answers 200."
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def start_api(workspace, seconds=300):
    "Start the API for `workspace` by `churn-nb serve --port P` (free P); return (process, URL) once /health answers."
    port = free_port()
    log = Path(workspace) / f"api-{time.time_ns()}.log"
    proc = start_server(["serve", "--port", str(port)], workspace, log)
    url = f"http://{HOST}:{port}"
    wait_until_ready(lambda: answers_health(url), proc, log, f"churn-nb serve --port {port}", seconds)
    return proc, url


def stop_api(proc):
    "SIGTERM (the queued predictions are written), SIGKILL after 30 s."
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Dashboard:
    "The dashboard served for `workspace` on a free port by `churn-nb dashboard --port P`, as a user starts it."

    def __init__(self, workspace, logs, refresh=2):
        self.workspace, self.port = Path(workspace), free_port()
        self.log = Path(logs) / f"dashboard-{time.time_ns()}.log"
        self.proc = start_server(
            ["dashboard", "--port", str(self.port)],
            workspace,
            self.log,
            CHURN_NB_DASHBOARD_REFRESH=str(refresh),
            CHURN_NB_DASHBOARD_POOL="3",
        )  # a test opens one page at a time: 3 preheated kernels, not 11
        what = f"churn-nb dashboard --port {self.port}"
        wait_until_ready(lambda: port_listening(self.port), self.proc, self.log, what, 60)

    @property
    def url(self):
        return f"http://{HOST}:{self.port}/"

    def log_text(self):
        return tail(self.log, None)

    def stop(self):
        "Stop the server and the kernels it started."
        stop_tree(self.proc.pid, 20)


# ---- pages in the browser ----


def open_page(browser, url, ready=".cn-kpis"):
    "A new page on `url` whose every request must stay on 127.0.0.1 (others are aborted and listed in `page.outside`)."
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = ctx.new_page()
    page.outside = []

    def route(r):
        u = r.request.url
        if u.startswith(f"http://{HOST}:") or u.startswith(("data:", "blob:")):
            r.continue_()
        else:
            page.outside.append(u)
            r.abort()

    page.route("**/*", route)
    page.goto(url, timeout=WAIT)
    page.wait_for_selector(ready, timeout=WAIT)
    return page


def leave(page):
    "Leave the page as a visitor does (navigating away tells Voila to shut the visit's kernel down)."
    page.unroute("**/*")  # an intercepted page drops the request it sends while it unloads
    page.goto("about:blank")
    page.wait_for_timeout(300)
    page.context.close()


def shot(page, name):
    "Screenshot the whole app (its content scrolls inside Voila's panel) to reports/screenshots/<name>.png."
    SHOTS.mkdir(parents=True, exist_ok=True)
    h = page.evaluate("document.getElementById('rendered_cells').scrollHeight")
    page.set_viewport_size({"width": 1360, "height": max(int(h) + 20, 700)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1360, "height": 900})


# ---- fixtures ----


@pytest.fixture
def workspace(tmp_path):
    "A scratch workspace, also set for in-process use of churn_nb."
    with use_workspace(tmp_path):
        yield tmp_path


@pytest.fixture(scope="session")
def small_champion(tmp_path_factory):
    "A workspace where a quick logistic regression (no AutoML) is champion version 1: trained once, only copied."
    ws = tmp_path_factory.mktemp("small-champion")
    r = churn_nb("run", "train", "-p", "models", "logreg", "-p", "cv_folds", "2", "-p", "automl", "false", workspace=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    assert champion(ws) == "1"
    return ws


@pytest.fixture
def ws_with_champion(small_champion, tmp_path):
    "A copy of `small_champion` of the test's own, where the test may train, kill and move the alias."
    return copy_workspace(small_champion, tmp_path / "ws")


@pytest.fixture(scope="session")
def scored(tmp_path_factory):
    "A workspace after `churn-nb run pipeline` on the sample with the defaults (as `make up`); never move its alias."
    ws = tmp_path_factory.mktemp("scored")
    out = churn_nb("run", "pipeline", workspace=ws, timeout=1500)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return ws


@pytest.fixture(scope="module")
def browser():
    "Debian's chromium, headless, driven by Playwright (one per test module; each test opens its own context)."
    from playwright import sync_api

    pw = sync_api.sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield b
    b.close()
    pw.stop()
