"""Your own table, end to end: the scoring run on public tables that are not Telco — an integer 0/1 target, no id, no
value column (gym_churn.csv) — reads as a user would want: customers at risk instead of revenue, a tenure found by
its name, the generic offer catalogue with the reason, and `churn-nb offers --template` writing a catalogue that
loads."""

import html as html_lib, json, re
from pathlib import Path
import pytest
from conftest import ROOT, churn_nb, client

TABLES = ROOT.parent / "shared" / "data" / "tables"
TELCO_WORDS = ("MonthlyCharges", "InternetService", "Month-to-month", "tenure", "revenue at risk", "Revenue at risk")


def table(name):
    path = TABLES / name
    if not path.exists():
        pytest.skip(f"{path} is not here: the public tables live next to the project (../shared/data/tables)")
    return path


@pytest.fixture(scope="module")
def gym(tmp_path_factory):
    "A workspace where the whole pipeline ran on gym_churn.csv with a quick logistic regression."
    ws = tmp_path_factory.mktemp("gym")
    out = churn_nb(
        "run",
        "pipeline",
        "-p",
        "data",
        str(table("gym_churn.csv")),
        "-p",
        "train.automl",
        "false",
        "-p",
        "train.models",
        "logreg",
        "-p",
        "train.cv_folds",
        "2",
        workspace=ws,
        timeout=1500,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return ws


def latest(ws):
    run = json.loads((Path(ws) / "marts" / "latest.json").read_text())["run_id"]
    return json.loads((Path(ws) / "marts" / "runs" / run / "summary.json").read_text())


def text_of(html: str) -> str:
    "The words of an HTML page (images and styles left out)."
    html = re.sub(r"<(style|script)[^>]*>.*?</\1>|<img[^>]*>|data:image/[^\"']+", " ", html, flags=re.S)
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_a_table_without_value_counts_customers_at_risk(gym):
    s = latest(gym)
    assert s["value_unit"] == "customers"
    assert (
        abs(s["kpis"]["revenue_at_risk"] - s["kpis"]["customers"] * s["kpis"]["predicted_churn_rate"])
        < 1e-6 * s["kpis"]["customers"]
    )
    assert s["thresholds"]["rule"] == "probability" and s["thresholds"]["high"] == 0.5
    notes = " ".join(s["notes"])
    assert "Kaplan–Meier over 'Lifetime', inferred from its name" in notes
    assert "offers.yml does not fit this table" in notes and "Contract period: 12" in notes


def without_offers_note(text: str) -> str:
    "`text` without the note naming the columns of the shipped (Telco) offers.yml that this table lacks."
    return re.sub(
        r"offers\.yml does not fit this table: its offers use .*?which the champion's columns do not include", " ", text
    )


def test_reports_read_as_the_table_not_telco(gym):
    runs = Path(gym) / "reports" / "runs"
    report = text_of(next(runs.glob("*-recommend/scoring_report.html")).read_text())
    assert "customers at risk" in report and "How this run was computed" in report
    pages = {name: text_of(next(runs.glob(f"*-{name}/{name}.html")).read_text()) for name in ("segment", "recommend")}
    assert all("Traceback" not in page for page in pages.values())
    for name, text in {**pages, "report": report}.items():
        for word in TELCO_WORDS:
            assert word not in without_offers_note(text), (name, word)


def test_the_generic_catalogue_is_recorded(gym):
    runs = [
        r
        for r in client(gym).search_runs([e.experiment_id for e in client(gym).search_experiments()])
        if r.data.tags.get("churn_nb.kind") == "recommend"
    ]
    assert runs and runs[0].data.tags["churn_nb.offer_catalogue"] == "generic"


def test_offers_template_from_the_champion_loads(gym, tmp_path):
    from churn_nb.data import DatasetSpec
    from churn_nb.decide.recommend import load_offers

    out = churn_nb("offers", "--template", "--model", "champion", "-o", str(tmp_path / "offers.yml"), workspace=gym)
    assert out.returncode == 0, out.stderr
    run = json.loads((Path(gym) / "marts" / "latest.json").read_text())["run_id"]
    spec = DatasetSpec.from_dict(
        json.loads((Path(gym) / "marts" / "stages" / run / "score.json").read_text())["spec"]
    )  # the champion's spec
    assert "contract_period_12" in [o.id for o in load_offers(tmp_path / "offers.yml", spec)]
    # and a scoring run with it uses it (no generic fallback)
    again = churn_nb(
        "run",
        "scoring",
        "-p",
        "data",
        str(table("gym_churn.csv")),
        "-p",
        "recommend.offers",
        str(tmp_path / "offers.yml"),
        workspace=gym,
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert not any(n.startswith("Offers:") for n in latest(gym)["notes"])
