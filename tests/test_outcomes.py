"""Closing the loop end to end on a copy of the shared `scored` workspace: the ledger records an offer to every
at-risk customer outside the control group the published run held out, a seeded simulation plays the campaign in a
world whose true uplift per offer is known, and `churn-nb run outcomes` records the outcomes and measures them: the
intervals hold the truth, the control group was never contacted, and the report and figures reach MLflow."""

import pandas as pd
import pytest
from conftest import all_runs, churn_nb, client, copy_workspace, store_url, use_workspace


@pytest.fixture(scope="module")
def campaign(scored, tmp_path_factory):
    """(workspace, truth, outcomes file): a copy of `scored` whose at-risk customers outside the control group got their
    top offer (a call without one), and their simulated outcomes."""
    from churn_nb.config import AT_RISK
    from churn_nb.monitor import ledger
    from churn_nb.monitor.outcomes import simulated_outcomes
    from churn_nb.run import store

    ws = copy_workspace(scored, tmp_path_factory.mktemp("outcomes") / "ws")
    with use_workspace(ws):
        scores, held = store.latest_scores(), set(store.control_group().customer_id)
        reached = scores[scores.tier.isin(AT_RISK) & ~scores.customer_id.isin(held)]  # every one of them: like for like
        actions = reached.top_offer.where(reached.top_offer.notna(), "call")  # no offer worth making: a call
        rows = [dict(customer_id=c, action=a) for c, a in zip(reached.customer_id, actions)]
        ledger.record_actions(rows, "api", taken_by="test")
        offers = reached.top_offer.value_counts().index
        truth = {offers[0]: 0.15, **{o: 0.0 for o in offers[1:]}}  # the most made offer works, the others do nothing
        tomorrow = str(pd.Timestamp.now() + pd.Timedelta(days=1))
        outcomes = simulated_outcomes(ledger.outcome_frame(), truth, seed=0, start=tomorrow)
    path = ws / "outcomes.csv"
    outcomes.to_csv(path, index=False)
    return ws, truth, path


def test_the_outcomes_run_recovers_the_true_uplift_and_logs_the_report(campaign):
    ws, truth, path = campaign
    out = churn_nb("run", "outcomes", "-p", "data", str(path), workspace=ws)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    run = next(r for r in all_runs(ws) if r.data.tags.get("churn_nb.kind") == "outcomes")
    assert run.info.status == "FINISHED" and run.data.params["recorded"] == str(len(pd.read_csv(path)))
    m, works = run.data.metrics, list(truth)[0]
    assert m["monitoring.alerts"] == 0, m  # outcomes drawn from the model's own probabilities: its AUC holds
    assert m[f"outcomes.uplift_low.{works}"] <= truth[works] <= m[f"outcomes.uplift_high.{works}"], m
    assert m[f"outcomes.uplift_low.{works}"] > 0, m  # the offer that works is seen to work
    measured = [o for o in list(truth)[1:] if f"outcomes.uplift_low.{o}" in m]
    misses = [o for o in measured if not m[f"outcomes.uplift_low.{o}"] <= 0 <= m[f"outcomes.uplift_high.{o}"]]
    assert len(misses) <= 1, (misses, m)  # offers that do nothing: a 95 % interval may miss 0 by chance, not twice
    folder = client(ws).download_artifacts(run.info.run_id, "outcomes", str(ws))
    everyone = pd.read_csv(f"{folder}/by_tier.csv", index_col=0).loc["all"]
    frame = pd.read_csv(path, dtype={"customer_id": str})
    with use_workspace(ws):
        from churn_nb.monitor import ledger

        groups = ledger.outcome_frame().set_index("customer_id")
    treated = groups[groups.group == "treated"]
    true_mean = treated.offer_id.map(truth).fillna(0).mean()  # what the campaign truly did for the average treated
    assert everyone.uplift_low <= true_mean <= everyone.uplift_high, (true_mean, everyone.to_dict())
    assert len(frame) == len(groups)
    artifacts = {a.path for a in client(ws).list_artifacts(run.info.run_id, "outcomes")}
    assert {"outcomes/outcomes_report.html", "outcomes/by_offer.csv", "outcomes/quality.csv"} <= artifacts
    report = next((ws / "reports" / "runs").glob("*-outcomes/outcomes_report.html")).read_text()
    assert "What the retention campaign did" in report and "control" in report
    fair = pd.read_csv(f"{folder}/fairness.csv", index_col=0, dtype={"group": str})  # the sample's sensitive columns
    assert set(fair.column) == {"gender", "SeniorCitizen"} and set(fair.group) == {"Female", "Male", "0", "1"}
    assert {"realised retention", "ROC AUC (untreated)", "calibration gap (untreated)"} <= set(fair.measure)
    retained = fair[fair.measure.eq("realised retention")].groupby("column").customers.sum()
    assert (retained == frame.churned.notna().sum()).all(), retained  # every customer with an outcome, in one group
    assert "Fairness: offers made, customers kept" in report


def test_the_control_group_was_never_contacted_and_a_bad_file_writes_nothing(campaign, tmp_path):
    from churn_nb.monitor import ledger
    from churn_nb.run import store

    ws, _, path = campaign
    with use_workspace(ws):
        frame, held = ledger.outcome_frame(), set(store.control_group().customer_id)
        actions = pd.read_sql("SELECT customer_id FROM actions", store.engine())
    assert held and not actions.customer_id.isin(held).any()
    assert set(frame.customer_id[frame.group == "control"]) == held
    bad = pd.read_csv(path, dtype={"customer_id": str})
    bad.loc[3, "customer_id"] = "no-such-customer"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    recorded = lambda: pd.read_sql("SELECT * FROM outcomes ORDER BY customer_id", store.engine(store_url(ws)))
    before = recorded()
    out = churn_nb("run", "outcomes", "-p", "data", str(tmp_path / "bad.csv"), workspace=ws)
    assert out.returncode != 0 and "bad.csv" in out.stderr and "(rows 4)" in out.stderr, out.stderr[-2000:]
    assert all_runs(ws)[0].info.status == "FAILED"  # the refusal is the run's error, in MLflow too
    pd.testing.assert_frame_equal(recorded(), before)  # not one outcome written, none replaced
