"""The action ledger end to end on a copy of the shared `scored` workspace: the control group a published run holds
out, the API refusing to contact it, outcome files refused by row with nothing written, and the dashboard's call list
that leaves the control group out and records its calls."""

import io
import pandas as pd
import pytest
import requests
from conftest import client, copy_workspace, start_api, stop_api, use_workspace


@pytest.fixture(scope="module")
def ws(scored, tmp_path_factory):
    "A copy of `scored` (its published run, control group and marts) that these tests write actions and outcomes to."
    return copy_workspace(scored, tmp_path_factory.mktemp("ledger") / "ws")


@pytest.fixture(scope="module")
def api(ws):
    "The API on `ws`, started by `churn-nb serve`; its base URL."
    proc, url = start_api(ws)
    yield url
    stop_api(proc)


def count(ws, table) -> int:
    "Rows of store table `table` in workspace `ws`."
    import sqlalchemy as sa
    from churn_nb.run import store

    with use_workspace(ws), store.engine().connect() as con:
        return con.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()


def test_publishing_holds_out_the_seeded_share_of_each_tier(ws):
    from churn_nb.run import store
    from churn_nb.run.pipeline import draw_control

    with use_workspace(ws):
        scores, held = store.latest_scores(), store.control_group()
        mart = store.latest_mart(columns=["customer_id", "control"])
    sizes = scores.tier.value_counts()
    assert held.tier.value_counts().to_dict() == {t: round(0.1 * n) for t, n in sizes.items()}
    assert set(held.share) == {0.1} and set(held.seed) == {0}
    assert set(mart.customer_id[mart.control]) == set(held.customer_id)  # the dashboard reads the same customers
    # the same seed draws the same customers, another seed others
    same = draw_control(scores.sample(frac=1, random_state=1), 0.1, 0)
    assert set(same.customer_id) == set(held.customer_id)
    assert set(draw_control(scores, 0.1, 1).customer_id) != set(held.customer_id)
    recommend = client(ws).search_runs(
        [e.experiment_id for e in client(ws).search_experiments()], "tags.`churn_nb.kind` = 'recommend'"
    )[0]
    assert (recommend.data.params["control_share"], recommend.data.params["control_seed"]) == ("0.1", "0")


def test_the_api_refuses_to_contact_a_control_customer_and_writes_nothing(ws, api):
    from churn_nb.run import store

    with use_workspace(ws):
        held, run_id = store.control_group().customer_id, store.latest_run_id()
        scores = store.latest_scores()
    before = count(ws, "actions")
    other = scores.customer_id[~scores.customer_id.isin(held)].iloc[0]
    body = {"actions": [{"customer_id": other, "action": "call"}, {"customer_id": held[0], "action": "call"}]}
    r = requests.post(f"{api}/actions", json=body)
    assert r.status_code == 409, r.text
    assert r.json()["error"].startswith(f"customer {held[0]} is in the control group of run {run_id}: do not contact")
    assert r.json()["field"] == "customer_id" and count(ws, "actions") == before  # the other action is not written
    unknown = requests.post(f"{api}/actions", json={"actions": [{"customer_id": "no-such-customer", "action": "call"}]})
    assert unknown.status_code == 404 and count(ws, "actions") == before
    made = requests.post(f"{api}/actions", json={"actions": body["actions"][:1], "taken_by": "crm"})
    assert made.status_code == 201 and len(made.json()["action_ids"]) == 1
    assert count(ws, "actions") == before + 1


def test_bad_outcome_files_are_refused_naming_rows_and_nothing_is_written(ws, tmp_path):
    from churn_nb.monitor import ledger
    from churn_nb.run import store

    with use_workspace(ws):
        scores, held = store.latest_scores(), set(store.control_group().customer_id)
        free = scores.customer_id[~scores.customer_id.isin(held)].tolist()
        ledger.record_actions([{"customer_id": free[1], "action": "call"}], "dashboard", taken_by="ana")
        before = count(ws, "outcomes")
        good = pd.DataFrame({"customer_id": free[2:5], "churned": ["yes", "no", "0"], "churned_at": ""})
        bad = {
            "unknown customer": (
                good.assign(customer_id=[free[2], "nobody", free[4]]),
                "no published scoring run",
                "2",
            ),
            "duplicate row": (good.assign(customer_id=[free[2], free[3], free[2]]), "rows share a customer id", "1, 3"),
            "date before the action": (
                good.assign(customer_id=[free[2], free[1], free[4]], churned_at=["", "2020-01-01", ""]),
                "churned before the customer's first recorded action",
                "2",
            ),
        }
        for name, (table, problem, rows) in bad.items():
            path = tmp_path / f"{name.replace(' ', '_')}.csv"
            table.to_csv(path, index=False)
            with pytest.raises(ValueError) as refused:
                ledger.record_outcomes(ledger.read_outcomes(path), path.name)
            message = str(refused.value)
            assert path.name in message and problem in message and f"(rows {rows}). Fix: " in message, (name, message)
            assert count(ws, "outcomes") == before, name
        path = tmp_path / "outcomes.csv"
        good.to_csv(path, index=False)
        assert ledger.record_outcomes(ledger.read_outcomes(path), path.name) == 3
        frame = ledger.outcome_frame().set_index("customer_id")
    assert frame.churned[free[2:5]].tolist() == [1.0, 0.0, 0.0] and frame.group[free[1]] == "treated"
    assert set(frame.group[list(held)]) == {"control"}


def test_the_call_list_export_leaves_the_control_group_out_and_records_its_calls(ws):
    from churn_nb.faces import dashboard
    from churn_nb.run import store

    with use_workspace(ws):
        held, scores = set(store.control_group().customer_id), store.latest_scores()
        data = dashboard.load_data(champion=False)
        page = dashboard.RiskListPage(data)
        page.rows.value = 100_000  # every High-tier customer
        page.export()
        csv, ids, kept = dashboard.call_list_csv(data, n=100_000)
        calls = ledger_calls(ws)
    high = scores.customer_id[scores.tier == "High"]
    assert f"; {kept:,} held out as control" in page.link.value, page.box.value
    assert kept == high.isin(held).sum() > 0
    listed = pd.read_csv(io.StringIO(csv), dtype={"customer_id": str}).customer_id
    assert not listed.isin(held).any() and set(listed) == set(high) - held
    assert set(calls.customer_id) >= set(listed) and not calls.customer_id.isin(held).any()


def ledger_calls(ws) -> pd.DataFrame:
    "The `call` actions the dashboard's call list recorded in workspace `ws`."
    import sqlalchemy as sa
    from churn_nb.run import store

    with use_workspace(ws), store.engine().connect() as con:
        return pd.read_sql(sa.text("SELECT * FROM actions WHERE channel = 'call list' AND action = 'call'"), con)
