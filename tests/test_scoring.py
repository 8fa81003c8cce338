"""Scheduled scoring end to end: the pipeline on the sample with an H2O AutoML champion, what the store holds,
contributions against the champion itself, configuration changes, refusals that keep the previous results."""

import json
import numpy as np
import pandas as pd
import yaml
from conftest import ROOT, churn_nb, client, run_python

STORE_FIELDS = (  # what the store promises its readers for every scored customer
    "run_id customer_id model_version scored_at probability tier segment value revenue_at_risk strategy top_reasons "
    "top_offers"
).split()


def in_workspace(code, workspace):
    "Run Python `code` in a fresh process with CHURN_NB_HOME=workspace; return its stdout (parsed as JSON)."
    out = run_python(code, workspace)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def latest(workspace):
    """The latest run's id, row count and a checksum of its probabilities, read through churn_nb.run.store in a fresh
    process."""
    return in_workspace(
        """
        import json; from churn_nb.run import store
        t = store.latest_scores()
        run_id = t.run_id.iloc[0] if len(t) else None
        marts = store.latest_summary()["run_id"]
        print(json.dumps({"run_id": run_id, "rows": len(t), "sum": float(t.probability.sum()), "marts": marts}))""",
        workspace,
    )


def test_store_holds_every_customer_with_every_field(scored):
    telco = pd.read_csv(ROOT / "churn_nb" / "sample" / "telco_churn.csv.gz")
    t = in_workspace(
        """
        import json; from churn_nb.run import store
        t = store.latest_scores()
        print(t.to_json(orient="split", date_format="iso"))""",
        scored,
    )
    t = pd.DataFrame(t["data"], columns=t["columns"])
    assert len(t) == len(telco) == 7043 and set(t.customer_id) == set(telco.customerID)
    assert set(STORE_FIELDS) <= set(t.columns)
    assert t[STORE_FIELDS].notna().all().all()
    assert t.run_id.nunique() == 1 and t.model_version.iloc[0] == str(
        client(scored).get_model_version_by_alias("churn", "champion").version
    )
    assert set(t.tier) == {"High", "Medium", "Low"} and t.segment.nunique() >= 3
    np.testing.assert_allclose(t.revenue_at_risk, t.probability * t.value, rtol=1e-7)  # JSON keeps 10 digits
    reasons = [json.loads(r) for r in t.top_reasons]
    assert all(len(r) >= 1 for r in reasons)
    assert {k for r in reasons for x in r for k in x} == {"feature", "family", "value", "points", "text"}
    assert any(x["points"] < 0 for r in reasons for x in r) and any(
        x["points"] > 0 for r in reasons for x in r
    )  # both directions
    offers = [json.loads(o) for o in t.top_offers]
    at_risk = t.tier.isin(["High", "Medium"]).to_numpy()
    assert all(o == [] for o, r in zip(offers, at_risk) if not r)
    with_offer = [o for o, r in zip(offers, at_risk) if r and o]
    assert len(with_offer) > 0.3 * at_risk.sum()
    assert all(
        len(o) <= 3
        and all(x["expected_value"] > 0 for x in o)
        and [x["expected_value"] for x in o] == sorted([x["expected_value"] for x in o], reverse=True)
        for o in with_offer
    )
    assert all(isinstance(x["why"], str) and x["why"] for o in with_offer for x in o)


def test_contributions_reproduce_the_champion(scored):
    "base + Σ contributions = the registered champion's own probability (pyfunc, MOJO in-process), within 1e-6."
    r = in_workspace(
        """
        import json, mlflow, numpy as np, pandas as pd
        from churn_nb.run import store
        from churn_nb.data import load_sample
        from churn_nb.model.tracking import ensure_store
        ensure_store()   # the workspace's MLflow store
        c = store.latest_mart("contributions").sample(300, random_state=0)
        m = mlflow.pyfunc.load_model("models:/churn@champion")
        spec = m.metadata.metadata["churn_nb"]["spec"]
        raw = load_sample().set_index("customerID").loc[c.customer_id].reset_index()
        p = m.predict(raw)["churn_probability"].to_numpy()
        total = c.base.to_numpy() + c[spec["numeric"] + spec["categorical"]].to_numpy().sum(1)
        print(json.dumps({"err": float(np.abs(total - p).max()), "rows": len(c)}))""",
        scored,
    )
    assert r["rows"] == 300 and r["err"] <= 1e-6


def test_offer_cost_changes_the_ranking_and_economics_change_the_thresholds(scored, tmp_path):
    runs = client(scored).search_runs(
        [e.experiment_id for e in client(scored).search_experiments()], "tags.`churn_nb.kind` = 'score'"
    )
    scoring_run = runs[0].info.run_id
    before = in_workspace(
        """
        import json; from churn_nb.run import store
        print(json.dumps(store.latest_scores().top_offer.value_counts().to_dict()))""",
        scored,
    )
    top = max(before, key=before.get)
    catalogue = yaml.safe_load((ROOT / "scheduled" / "offers.yml").read_text())
    for o in catalogue["offers"]:
        if o["id"] == top:
            o["cost"] = 10_000
    (tmp_path / "offers.yml").write_text(yaml.safe_dump(catalogue))
    out = churn_nb(
        "run",
        "recommend",
        "-p",
        "scoring_run",
        scoring_run,
        "-p",
        "offers",
        str(tmp_path / "offers.yml"),
        workspace=scored,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    after = in_workspace(
        """
        import json; from churn_nb.run import store
        print(json.dumps(store.latest_scores().top_offer.value_counts().to_dict()))""",
        scored,
    )
    assert after.get(top, 0) < before[top] / 10, (top, before, after)
    assert latest(scored)["rows"] == 7043  # the same run again: replaced, not duplicated

    settings = yaml.safe_load((ROOT / "scheduled" / "retention.yml").read_text())
    settings["economics"]["offer_cost"] *= 3
    (tmp_path / "retention.yml").write_text(yaml.safe_dump(settings))
    thresholds = []
    for extra in ([], ["-p", "settings", str(tmp_path / "retention.yml")]):
        if extra:  # the default settings' segment run is the pipeline's own, on the same scoring run
            out = churn_nb("run", "segment", "-p", "scoring_run", scoring_run, *extra, workspace=scored)
            assert out.returncode == 0, out.stderr[-2000:]
        seg = client(scored).search_runs(
            [e.experiment_id for e in client(scored).search_experiments()],
            "tags.`churn_nb.kind` = 'segment'",
            order_by=["attributes.start_time DESC"],
        )[0]
        assert seg.data.tags["churn_nb.scoring_run"] == scoring_run
        thresholds.append(seg.data.metrics["threshold_high"])
    assert thresholds[1] > thresholds[0]


def test_table_missing_a_model_column_is_refused_and_previous_results_stay(scored, tmp_path):
    before = latest(scored)
    telco = pd.read_csv(ROOT / "churn_nb" / "sample" / "telco_churn.csv.gz").drop(columns=["Contract"])
    telco.to_csv(tmp_path / "no_contract.csv", index=False)
    out = churn_nb("run", "scoring", "-p", "data", str(tmp_path / "no_contract.csv"), workspace=scored)
    assert out.returncode == 1
    assert "no_contract.csv: missing column 'Contract' that the model needs" in out.stderr
    assert "pipeline scoring stopped at step 1/3 (score); not run: segment, recommend" in out.stderr
    assert latest(scored) == before
    failed = client(scored).search_runs(
        [e.experiment_id for e in client(scored).search_experiments()],
        "tags.`churn_nb.kind` = 'score'",
        order_by=["attributes.start_time DESC"],
    )[0]
    assert failed.info.status == "FAILED"


def test_bad_offer_catalogue_is_refused_before_publishing(scored, tmp_path):
    before = latest(scored)
    catalogue = yaml.safe_load((ROOT / "scheduled" / "offers.yml").read_text())
    catalogue["offers"][0]["changes"] = {"Contract": "Three year"}
    (tmp_path / "offers.yml").write_text(yaml.safe_dump(catalogue))
    out = churn_nb("run", "recommend", "-p", "offers", str(tmp_path / "offers.yml"), workspace=scored)
    assert out.returncode == 1 and "Three year" in out.stderr and "offers.yml" in out.stderr
    assert latest(scored) == before


def test_crontab_lines_run_the_pipelines(scored):
    out = churn_nb("schedule", "--crontab", workspace=scored)
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and all(len(l.split()) > 5 and f"cd {scored} " in l for l in lines)
    assert lines[0].startswith("0 2 * * 0 ") and " run pipeline >> " in lines[0] and " run scoring >> " in lines[1]
