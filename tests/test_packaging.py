"""The package: requirements in one place, a wheel that installs and works in a fresh environment, light imports, the
shipped sample."""

import configparser, gzip, hashlib, shlex, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import yaml
from conftest import ROOT


def settings_requirements():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return shlex.split(cfg["DEFAULT"]["requirements"]) + shlex.split(cfg["DEFAULT"]["dev_requirements"])


def test_environment_yml_matches_settings_ini():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "openjdk=17" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == settings_requirements()


def test_pins_we_rely_on():
    reqs = settings_requirements()
    for pin in ("nbdev>=2.4.14,<3", "execnb<0.2", "fastcore<2", "h2o==3.46.0.11"):
        assert pin in reqs


def test_bundled_sample_is_the_ibm_file_with_its_license():
    sample = ROOT / "churn_nb" / "sample"
    assert (
        hashlib.md5(gzip.decompress((sample / "telco_churn.csv.gz").read_bytes())).hexdigest()
        == "3b0bfab28a8101b4e4fdd08025a5c235"
    )
    assert "Apache License" in (sample / "LICENSE").read_text()
    assert (
        "IBM/telco-customer-churn-on-icp4d" in (sample / "NOTICE").read_text()
        and "IBM/telco-customer-churn-on-icp4d" in (ROOT / "README.md").read_text()
    )


def test_import_is_light():
    code = (
        "import sys, churn_nb, churn_nb.config, churn_nb.data, churn_nb.cli; print(sorted(m for m in ('h2o', 'mlflow', "
        "'shap', 'sklearn') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_wheel_installs_and_works_in_a_fresh_virtualenv(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = list((tmp_path / "dist").glob("churn_nb-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "churn_nb/sample/telco_churn.csv.gz",
        "churn_nb/sample/LICENSE",
        "churn_nb/sample/NOTICE",
        "churn_nb/scheduled/train.ipynb",
        "churn_nb/scheduled/schedule.yml",
        "churn_nb/scheduled/score.ipynb",
        "churn_nb/scheduled/segment.ipynb",
        "churn_nb/scheduled/recommend.ipynb",
        "churn_nb/scheduled/retention.yml",
        "churn_nb/scheduled/offers.yml",
        "churn_nb/scheduled/monitoring.yml",
        "churn_nb/scheduled/feedback.ipynb",
        "churn_nb/scheduled/feedback-train.ipynb",
        "churn_nb/scheduled/outcomes.ipynb",
        "churn_nb/app/dashboard.ipynb",
        "churn_nb/app/share/voila/templates/churn_nb/index.html.j2",
        "churn_nb/app/share/voila/templates/churn_nb/conf.json",
        "churn_nb/sample/feedback.csv.gz",
        "churn_nb/text/data/feedback_train.csv",
        "churn_nb/text/data/vader_ratings.csv.gz",
        "churn_nb/text/data/VADER_LICENSE.txt",
        "churn_nb/text/static/vectors.npy",
        "churn_nb/text/static/vocab.txt",
        "churn_nb/text/static/LICENSE",
        "churn_nb/text/static/NOTICE",
        "churn_nb/text/classifier/model.json",
        "churn_nb/text/classifier/model.npz",
    } <= names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # the dependencies are the ones `make install` resolved from the registry: the fresh environment sees this one's
    # site-packages (a path only: its .pth files, such as the editable churn_nb, are not run), `pip check` proves they
    # satisfy the wheel's requirements, and the wheel itself is installed alone
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = str(venv / "bin" / "pip")
    r = subprocess.run([pip, "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([pip, "check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run([str(venv / "bin" / "churn-nb"), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "doctor" in r.stdout
    python = str(venv / "bin" / "python")
    shipped = (
        "from churn_nb.data import load_sample; from churn_nb import config; import churn_nb; "
        "print(load_sample().shape, config.scheduled_dir().parent == "
        "__import__('pathlib').Path(churn_nb.__file__).parent)"
    )
    feedback = (  # the feedback model works from the installed files alone, and nothing pulled torch in
        "import importlib.util; from churn_nb.text.classify import feedback_model; "
        "print(feedback_model().analyse(['Third outage this week, fix it or I leave']).category[0], "
        "importlib.util.find_spec('torch') is None)"
    )
    for code, printed in ((shipped, "(7043, 21) True"), (feedback, "complaint True")):
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.strip() == printed
