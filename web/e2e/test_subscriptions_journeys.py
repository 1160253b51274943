"""Subscriptions dashboard views and CSV; customer journeys lists and timeline."""

from playwright.sync_api import expect

from conftest import api, dev_token, shoot


def test_dashboard_views_match_the_api_and_export_csv(sign_in):
    token = dev_token("sales_rep")
    status, expiring = api("GET", "/api/admin/subscriptions?view=expiring&limit=25", token)
    assert status == 200 and expiring["items"], "the seed has a term ending soon"
    page = sign_in("sales_rep", next="/subscriptions")
    page.get_by_test_id("subscriptions-table").wait_for()
    page.get_by_role("tab", name="Expiring soon").click()
    table = page.get_by_test_id("subscriptions-table")
    first = expiring["items"][0]
    table.get_by_role("link", name=first["companyName"]).wait_for()
    expect(table.locator("tbody tr")).to_have_count(len(expiring["items"]))
    with page.expect_download() as d:
        page.get_by_role("button", name="Export CSV").click()
    text = open(d.value.path(), encoding="utf-8").read()
    assert first["partnerId"] in text
    shoot(page, "subscriptions-expiring")
    status, history = api("GET", "/api/admin/subscriptions?view=history&limit=25", token)
    page.get_by_role("tab", name="History").click()
    newest = history["items"][0]
    page.get_by_test_id("subscriptions-table").get_by_role("link", name=newest["partnerId"]).first.wait_for()
    expect(page.get_by_test_id("subscriptions-table").locator("tbody tr")).to_have_count(len(history["items"]))
    shoot(page, "subscriptions-history")


def test_churn_risk_list_and_a_partners_journey(sign_in):
    token = dev_token("sales_manager")
    status, risky = api("GET", "/api/admin/partners/churn-risk?limit=20", token)
    assert status == 200 and risky["items"]
    top = risky["items"][0]
    page = sign_in("sales_manager", next="/journeys")
    lst = page.get_by_test_id("journey-list")
    lst.get_by_role("link", name=top["companyName"]).click()
    timeline = page.get_by_test_id("journey-timeline")
    timeline.wait_for()
    status, journey = api("GET", f"/api/admin/partners/{top['partnerId']}/journey", token)
    expect(timeline.locator("li")).to_have_count(len(journey["transitions"]))
    assert f"{journey['churnProbability']}%" in page.get_by_test_id("churn-score").inner_text()
    for factor in journey["churnFactors"]:
        assert page.get_by_text(factor["description"]).first.is_visible()
    shoot(page, "journey-partner")
    page.get_by_role("link", name="← Lists").click()
    page.get_by_role("tab", name="Upsell").click()
    page.get_by_test_id("journey-list").wait_for()
    shoot(page, "journeys-upsell")
