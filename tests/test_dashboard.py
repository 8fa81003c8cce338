"""The dashboard in a real browser: Voila serves churn_nb's app on a copy of the scored workspace; Playwright drives
Debian's chromium (no browser download) through every page, with every request checked to stay on 127.0.0.1.
Screenshots go to reports/screenshots/. Each test opens its own page (a test that changes the workspace gets a copy
and a server of its own), so any test passes alone and in any order."""

import json, shutil, time, urllib.request
from pathlib import Path
import pandas as pd
import pytest
from playwright import sync_api  # a dev requirement: the browser tests never skip silently
from conftest import (
    WAIT,
    Dashboard,
    champion,
    churn_nb,
    copy_workspace,
    leave,
    open_page,
    shot,
    store_url,
    use_workspace,
)

expect = sync_api.expect  # assertions that wait: the page's widgets arrive one message at a time
READY = {
    "Overview": ".cn-page-overview",
    "Risk list": ".cn-risk-table table",
    "Customer": ".cn-customer-head",
    "What-if": ".cn-whatif-p",
    "Model": ".cn-model-card h3",
    "Voice of the customer": ".cn-voice-figures .cn-kpi",
    "Model health": ".cn-health-drift table",
}  # tab -> what shows that it is built
VOICE = "Voice of the customer"


def latest_summary(ws):
    "The summary of the workspace's latest published scoring run (its marts)."
    run = json.loads((Path(ws) / "marts" / "latest.json").read_text())["run_id"]
    return json.loads((Path(ws) / "marts" / "runs" / run / "summary.json").read_text())


def body_text(page):
    return page.inner_text("body")


def tab(page, name):
    "Open tab `name` and wait until its page is built."
    page.get_by_role("tab", name=name, exact=True).click()  # exact: "Customer" is also in "Voice of the customer"
    page.wait_for_selector(READY[name], timeout=WAIT)


def visit(browser, url):
    "A fixture body: a fresh page on the dashboard at `url`; after the test, no request may have left 127.0.0.1."
    p = open_page(browser, url)
    yield p
    outside = list(p.outside)
    leave(p)
    assert outside == [], f"the page sent requests outside 127.0.0.1: {outside}"


@pytest.fixture(scope="module")
def ws(scored, tmp_path_factory):
    """A copy of the scored workspace with the demo feedback analysed (`churn-nb run feedback`), for the tests that only
    read (and add feedback): never written into the shared one."""
    ws = copy_workspace(scored, tmp_path_factory.mktemp("dashboard") / "ws")
    out = churn_nb("run", "feedback", workspace=ws)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return ws


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return tmp_path_factory.mktemp("dashboard-logs")


def running(dashboard):
    "A fixture body: `dashboard` for the test, stopped afterwards."
    yield dashboard
    dashboard.stop()


@pytest.fixture(scope="module")
def server(ws, logs):
    "The dashboard on the module's copy, shared by the tests that do not change the workspace."
    yield from running(Dashboard(ws, logs))


@pytest.fixture
def page(server, browser):
    "A fresh page on the shared server (a new browser context: its own kernel, nothing left by another test)."
    yield from visit(browser, server.url)


@pytest.fixture
def own_server(scored, tmp_path, logs):
    "A private copy of the scored workspace and a dashboard on it, for a test that publishes a run or moves the alias."
    yield from running(Dashboard(copy_workspace(scored, tmp_path / "ws"), logs))


@pytest.fixture
def own_page(own_server, browser):
    "A fresh page on the test's own server."
    yield from visit(browser, own_server.url)


def test_overview_shows_the_runs_figures(page, ws):
    k = latest_summary(ws)["kpis"]
    text = body_text(page)
    for v in (
        f"{k['customers']:,}",
        f"{100 * k['predicted_churn_rate']:.1f}%",
        f"{k['high_risk_customers']:,}",
        f"{k['revenue_at_risk']:,.0f}",
    ):
        assert v in text
    assert "By risk tier" in text and "By segment" in text and "Trend across scoring runs" in text
    assert page.locator(".cn-page-overview table").count() == 2
    shot(page, "overview")


def test_risk_list_filters_and_exports_the_call_list(page, ws):
    from churn_nb.run import store
    from churn_nb.faces.dashboard import filter_columns
    from churn_nb.model.features import humanize
    from churn_nb.decide.recommend import call_list

    summary = latest_summary(ws)
    mart = pd.read_parquet(Path(ws) / "marts" / "runs" / summary["run_id"] / "customers.parquet")
    # the filters are the run's most important categorical and numeric columns, labelled in words
    # (not Telco's Contract and tenure by name)
    chosen = filter_columns(mart, summary)
    ranked = [r["feature"] for r in summary["importance"]]
    assert chosen["category"] == next(f for f in ranked if f in summary["columns"]["categorical"])
    assert chosen["number"] == next(f for f in ranked if f in summary["columns"]["numeric"])
    cat, label = chosen["category"], humanize(chosen["category"]).capitalize()
    high = mart[mart.tier == "High"][cat].astype(str).value_counts()
    assert len(high) > 1, f"every High-tier customer has the same {cat}: filtering by it would change nothing"
    level = high.index[-1]  # the rarest level among the High tier: the filter must drop most rows
    tab(page, "Risk list")
    assert page.inner_text(".cn-risk-category .widget-label") == label
    assert page.inner_text(".cn-risk-number .widget-label") == humanize(chosen["number"]).capitalize()
    assert page.inner_text(".cn-risk-table thead th:nth-child(6)") == label
    before = page.inner_text(".cn-count")
    page.select_option(".cn-risk-category select", label=level)
    # the count is sent after the table
    page.wait_for_function("b => document.querySelector('.cn-count').innerText != b", arg=before)
    rows = page.locator(".cn-risk-table tbody tr")
    assert rows.count() > 0 and all(t == level for t in rows.locator("td:nth-child(6)").all_inner_texts())
    assert set(rows.locator("td:nth-child(2)").all_inner_texts()) == {"High"}
    in_filter = (mart.tier == "High") & (mart[cat].astype(str) == level)
    assert int(page.inner_text(".cn-count").split()[0].replace(",", "")) == int(in_filter.sum())
    # the call list of the filtered customers: every row a High-tier customer with that level, the store's probability
    page.click("button.cn-risk-export")
    page.wait_for_selector(".cn-download")
    with page.expect_download() as dl:
        page.click(".cn-download")
    got = pd.read_csv(dl.value.path())
    scores = store.latest_scores(store_url(ws)).set_index("customer_id")
    assert len(got) and set(got.customer_id.astype(str)) <= set(mart.customer_id[in_filter])
    assert (got.probability - scores.probability.loc[got.customer_id.astype(str)].to_numpy()).abs().max() < 1e-12
    # no filter: exactly recommend.call_list of the store's latest scores
    page.select_option(".cn-risk-category select", label="All")
    page.fill(".cn-risk-rows input", "200")
    page.keyboard.press("Tab")
    page.wait_for_timeout(300)
    page.click("button.cn-risk-export")
    page.wait_for_function(
        "() => document.querySelector('.cn-download') "
        "&& document.querySelector('.cn-download').innerText.includes('(200 ')"
    )
    with page.expect_download() as dl:
        page.click(".cn-download")
    held = store.control_group(url=store_url(ws)).customer_id  # left out of the call list, and said so
    assert "held out as control" in page.inner_text(".cn-download") and len(held)
    got, want = pd.read_csv(dl.value.path()), call_list(scores[~scores.index.isin(held)].reset_index(), 200)
    assert list(got.columns) == ["customer_id", "probability", "revenue_at_risk", "segment", "reasons", "offer"]
    assert list(got.customer_id) == list(want.customer_id)
    assert (got.probability - want.probability).abs().max() < 1e-12 and list(got.reasons) == list(want.reasons)
    shot(page, "risk-list")


HEAD_SHOWS = (
    "id => document.querySelector('.cn-customer-head') "
    "&& document.querySelector('.cn-customer-head').innerText.includes('Customer ' + id)"
)


def test_customer_page_shows_reasons_offers_saves_feedback_and_records_actions(page, ws):
    from churn_nb.monitor import ledger
    from churn_nb.run import store

    # a row of the risk list opens that customer on the Customer tab
    tab(page, "Risk list")
    first = page.locator(".cn-risk-table tbody tr td:first-child").first.inner_text()
    page.select_option(".cn-risk-pick select", label=first)
    page.click("button.cn-risk-open")
    page.wait_for_function(HEAD_SHOWS, arg=first)
    # find by id: a High-tier customer with offers
    scores = store.latest_scores(store_url(ws))
    held = store.control_group(url=store_url(ws)).customer_id  # the run's control group: do not contact
    reachable = scores[~scores.customer_id.isin(held)]
    row = reachable[(reachable.tier == "High") & reachable.top_offer.notna()].sort_values("probability").iloc[0]
    page.fill(".cn-customer-find input", row.customer_id)
    page.click("button.cn-customer-show")
    page.wait_for_function(HEAD_SHOWS, arg=row.customer_id)
    expect(page.locator(".cn-customer-reasons li")).to_have_text([r["text"] for r in json.loads(row.top_reasons)])
    offers = json.loads(row.top_offers)
    expect(page.locator(".cn-offers tbody tr")).to_have_count(len(offers))
    expect(page.locator(".cn-customer-offers")).to_contain_text(offers[0]["name"])
    expect(page.locator(".cn-gauge")).to_contain_text(f"{100 * row.probability:.1f}%")
    history = store.customer_history(row.customer_id, store_url(ws))
    expect(page.locator(".cn-customer-history tbody tr")).to_have_count(len(history))
    # the waterfall is drawn after the reasons (its box emptied first): wait until it ends at this customer's risk
    waterfall = page.locator(".cn-customer-waterfall svg")
    expect(waterfall).to_contain_text(f"{100 * row.probability:.1f}%", timeout=WAIT)
    drawn = "() => document.querySelectorAll('.cn-customer-waterfall svg rect').length >= 3"
    page.wait_for_function(drawn, timeout=WAIT)  # its bars (a loaded machine may show the text a moment earlier)
    # feedback goes to the store
    note = f"Browser test note {time.time_ns()}: asked about a cheaper plan."
    page.fill(".cn-customer-note textarea", note)
    page.fill(".cn-customer-author input", "test")
    page.click("button.cn-customer-save")
    page.wait_for_selector(".cn-customer-feedback .cn-ok")
    expect(page.locator(".cn-customer-notes")).to_contain_text(note)
    saved = store.feedback_for(row.customer_id, store_url(ws))
    assert saved.text.iloc[0] == note and saved.author.iloc[0] == "test"
    # what was done goes to the action ledger: the best offer made, then accepted
    before = len(ledger.customer_actions(row.customer_id, store_url(ws)))  # a call list export may have listed them
    page.select_option(".cn-customer-action select", label=offers[0]["name"])
    for status in ("made", "accepted"):
        page.click(f"button.cn-customer-{status}")
        expect(page.locator(".cn-customer-recorded .cn-ok")).to_contain_text(f"Recorded: {offers[0]['name']}, {status}")
    expect(page.locator(".cn-customer-actions tbody tr")).to_have_count(before + 2)
    actions = ledger.customer_actions(row.customer_id, store_url(ws)).head(2)
    assert actions[["action", "status", "channel", "taken_by"]].values.tolist() == [
        [offers[0]["id"], status, "dashboard", "test"] for status in ("accepted", "made")
    ]
    shot(page, "customer")
    page.fill(".cn-customer-find input", held.iloc[0])  # a control customer: marked, and no button to press
    page.click("button.cn-customer-show")
    page.wait_for_function(HEAD_SHOWS, arg=held.iloc[0])
    expect(page.locator(".cn-customer-actions")).to_contain_text("do not contact")
    expect(page.locator("button.cn-customer-made")).to_be_disabled()


def voice_of(ws):
    "What the Voice page reads, read here from the store: the analysed texts, and the tiers of their customers."
    from churn_nb.faces.dashboard import voice_texts
    from churn_nb.run import store

    texts = voice_texts(store_url(ws))
    scores = store.latest_scores(store_url(ws))
    return texts, scores.loc[scores.customer_id.isin(texts.customer_id), ["customer_id", "tier", "probability"]]


def test_voice_page_shows_what_customers_say(page, ws):
    from html import escape
    from churn_nb.faces.dashboard import complaint_topics, month_label, num, pct, signed
    from churn_nb.run.feedback import negative_high_risk, topic_overview, volume_by_month

    tab(page, VOICE)
    texts, tiers = voice_of(ws)
    assert (texts.source == "feedback run").sum() == 600  # the demo feedback, analysed by the fixture's run
    figures = page.inner_text(".cn-voice-figures")
    for figure in (num(len(texts)), pct((texts.category == "complaint").mean()), signed(texts.sentiment.mean())):
        assert figure in figures
    volume, months = volume_by_month(texts), page.inner_html(".cn-voice-months")
    assert page.locator(".cn-voice-months svg.cn-trend circle").count() == len(volume)  # a point per month
    for month, row in volume.iterrows():
        for category, k in row.items():
            assert f"<title>{month_label(month)} · {category}: {num(k)}</title>" in months
    bars = page.inner_html(".cn-voice-complaints")
    assert all(f">{escape(t, quote=False)}</text>" in bars for t in complaint_topics(texts, tiers).index)
    topics = page.locator(".cn-voice-topics tbody tr td:first-child").all_inner_texts()
    assert topics == list(topic_overview(texts).index)
    worst = negative_high_risk(texts, tiers, 10)
    shown = page.locator(".cn-voice-negative tbody tr td:first-child").all_inner_texts()
    assert len(worst) == 10 and shown == list(worst.customer_id)
    assert "Traceback" not in body_text(page)
    shot(page, "voice")


def test_a_note_is_analysed_and_reaches_the_voice_page(page, ws):
    from churn_nb.faces.dashboard import num, pct, signed
    from churn_nb.run import store

    tab(page, VOICE)
    heard = page.locator(".cn-voice-figures .cn-kpi .v").first.inner_text()
    tab(page, "Customer")
    scores = store.latest_scores(store_url(ws))
    cid = scores[scores.tier == "High"].sort_values("probability").customer_id.iloc[-1]
    page.fill(".cn-customer-find input", cid)
    page.click("button.cn-customer-show")
    page.wait_for_function(HEAD_SHOWS, arg=cid)
    kept = len(store.feedback_for(cid, store_url(ws)))
    page.click("button.cn-customer-save")  # an empty note: the store's message in the page, nothing saved
    expect(page.locator(".cn-customer-feedback .cn-error")).to_contain_text("the note is empty")
    assert "Fix: write what the customer said" in page.inner_text(".cn-customer-feedback")
    page.fill(".cn-customer-note textarea", "x" * 10_001)
    page.click("button.cn-customer-save")
    expect(page.locator(".cn-customer-feedback .cn-error")).to_contain_text("more than 10,000")
    assert len(store.feedback_for(cid, store_url(ws))) == kept
    note = f"Fourth outage this month and nobody calls back, I am cancelling my contract ({time.time_ns()})."
    page.fill(".cn-customer-note textarea", note)
    page.click("button.cn-customer-save")
    page.wait_for_selector(".cn-customer-feedback .cn-ok")
    saved = store.feedback_for(cid, store_url(ws)).iloc[0]
    assert saved.text == note and saved.category in ("complaint", "praise", "suggestion", "other")
    read = [
        saved.category,
        f"{pct(saved.category_confidence, 0)} sure",
        f"{saved.sentiment_label} {signed(saved.sentiment)}",
    ]
    read.append(f"topic {saved.topic}")
    for said in read:  # how the note was read, in the box under it and in the list of notes
        assert said in page.inner_text(".cn-customer-feedback") and said in page.inner_text(".cn-customer-notes")
    tab(page, VOICE)  # the Voice page read the feedback again when the note was saved
    expect(page.locator(".cn-voice-figures .cn-kpi .v").first).to_have_text(
        num(int(heard.replace(",", "")) + 1), timeout=WAIT
    )


def test_whatif_slider_moves_the_probability(page):
    tab(page, "What-if")
    before = page.inner_text(".cn-whatif-p")
    page.locator(".cn-whatif-tenure .noUi-handle").focus()
    page.keyboard.press("End")  # tenure to its maximum
    page.wait_for_function("b => document.querySelector('.cn-whatif-p').innerText != b", arg=before)
    after = page.inner_text(".cn-whatif-p")
    assert float(after.rstrip("%")) < float(before.rstrip("%"))  # a longer tenure lowers the churn risk
    assert "points from the start" in page.inner_text(".cn-whatif-result")
    assert page.locator(".cn-whatif-result li").count() >= 1
    page.select_option(".cn-whatif-Contract select", label="Two year")
    page.wait_for_function("b => document.querySelector('.cn-whatif-p').innerText != b", arg=after)
    shot(page, "what-if")


def test_model_page_shows_the_champion(page, scored):
    tab(page, "Model")
    text = body_text(page)
    assert f"Champion: churn version {champion(scored)}" in text and "Holdout metrics" in text and "ROC AUC" in text
    assert "Leaderboard: Candidates" in text and "Leaderboard: H2O AutoML" in text and "What drives churn risk" in text
    page.wait_for_function("() => document.querySelectorAll('.cn-page-model img').length >= 4")
    shot(page, "model")


def test_model_health_page_shows_the_monitoring(page):
    tab(page, "Model health")
    text = body_text(page)
    assert (
        "Monitoring alerts" in text and "Per scoring run" in text and "Feature drift in the latest scoring run" in text
    )
    assert "No monitoring alert" in text  # the pipeline scored the very table the champion was trained on
    assert page.locator(".cn-health-drift tbody tr").count() == 15  # the 15 largest of the sample's 19 features
    assert "Fairness of who gets offers" in text and "flagged High" in text  # the sample's gender and SeniorCitizen
    assert page.locator(".cn-health-offers thead th").count() == 5  # measure; gender: Female, Male; SeniorCitizen: 0, 1
    assert "No outcomes run has grouped its customers yet" in text
    page.wait_for_function("() => document.querySelectorAll('.cn-page-health img').length == 1")
    shot(page, "model-health")


def test_new_champion_is_picked_up(own_page, own_server):
    "A new champion version (the same model registered again, in the copy's registry) reaches What-if, no restart."
    from churn_nb.model.tracking import ensure_store

    page = own_page
    tab(page, "What-if")
    with use_workspace(own_server.workspace):
        c = ensure_store()
        mv = c.get_model_version_by_alias("churn", "champion")
        new = c.create_model_version(
            "churn",
            source=mv.source,
            run_id=mv.run_id,
            model_id=getattr(mv, "model_id", None),
            description="registered again by the dashboard test",
        )
        c.set_registered_model_alias("churn", "champion", new.version)
    picked_up = "v => document.querySelector('.cn-status').innerText.includes(`champion version ${v} picked up`)"
    page.wait_for_function(picked_up, arg=str(new.version), timeout=60_000)
    answered = (
        "v => { const r = document.querySelector('.cn-whatif-result'); "
        "return r && r.innerText.includes(`champion version ${v}`); }"
    )
    page.wait_for_function(answered, arg=str(new.version), timeout=WAIT)
    assert "Traceback" not in body_text(page)


def test_no_request_leaves_localhost_and_no_code_is_shown(page, server):
    for name in READY:
        tab(page, name)  # every page, built in this visit
    assert page.outside == []
    for html in (page.content(), urllib.request.urlopen(server.url, timeout=60).read().decode()):
        assert "dashboard.app()" not in html and "from churn_nb import" not in html
    assert "Traceback" not in body_text(page)


def test_new_run_is_picked_up_and_a_broken_mart_shows_a_short_message(own_page, own_server):
    "A new scoring run appears without a restart; its broken contributions cost the waterfall only, in one line."
    from churn_nb.run import store

    page, ws = own_page, own_server.workspace
    old = latest_summary(ws)
    new_id = "dashboard-test-run"
    src, dst = Path(ws) / "marts" / "runs" / old["run_id"], Path(ws) / "marts" / "runs" / new_id
    shutil.copytree(src, dst)
    (dst / "summary.json").write_text(json.dumps({**old, "run_id": new_id, "scored_at": "2030-01-02T03:04:05+00:00"}))
    (dst / "contributions.parquet").write_bytes(b"this is not a parquet file")
    with use_workspace(ws):
        store.point_latest(
            new_id,
            {
                **store.history().iloc[-1].to_dict(),
                "run_id": new_id,
                "scored_at": "2030-01-02T03:04:05+00:00",
                "published_at": pd.Timestamp("2030-01-02 03:05"),
            },
        )
    shown = "() => document.querySelector('.cn-status').innerText.includes('02 Jan 2030')"
    page.wait_for_function(shown, timeout=60_000)
    tab(page, "Overview")
    assert "2 scoring runs since" in body_text(page)
    page.get_by_role("tab", name="Customer", exact=True).click()
    page.wait_for_selector(".cn-customer-waterfall .cn-error", timeout=WAIT)
    msg = page.inner_text(".cn-customer-waterfall")
    assert msg.startswith("Could not draw the waterfall of reasons:") and "Fix:" in msg and len(msg.splitlines()) == 1
    assert page.locator(".cn-customer-reasons li").count() >= 1  # the rest of the page still works
    assert "Traceback" not in body_text(page)
    assert "Traceback" in own_server.log_text()  # the details are in the server's log
    shot(page, "broken-mart")


def test_empty_workspace_explains_what_to_do(browser, tmp_path, logs):
    ws = tmp_path / "empty"
    ws.mkdir()
    d = Dashboard(ws, logs)
    try:
        p = open_page(browser, d.url, ready=".cn-nothing")
        text = body_text(p)
        assert "No customers scored yet" in text and "churn-nb run pipeline" in text
        assert "Traceback" not in text and p.outside == []
        shot(p, "nothing-scored")
        leave(p)
        deadline = time.monotonic() + 20  # leaving shuts the visit's kernel down (not left for culling)
        while "Kernel shutdown" not in d.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Kernel shutdown" in d.log_text() and "_xsrf' argument missing" not in d.log_text()
    finally:
        d.stop()
    assert list(ws.iterdir()) == []  # the dashboard created nothing in the workspace
