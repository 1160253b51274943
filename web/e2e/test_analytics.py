"""The analytics screen against the API's own figures."""

from conftest import api, dev_token, shoot


def money(cents: int) -> str:
    dollars = round(cents / 100)
    return f"${dollars:,}"


def test_mrr_card_equals_the_api_summary_and_csv_exports(sign_in):
    token = dev_token("sales_manager")
    status, summary = api("GET", "/api/admin/tiers/analytics", token)
    assert status == 200 and summary["totalMRR"] > 0
    page = sign_in("sales_manager")
    mrr = page.get_by_test_id("card-mrr").locator(".stat-value")
    mrr.wait_for()
    assert mrr.inner_text() == money(summary["totalMRR"])
    assert page.get_by_test_id("card-arr").locator(".stat-value").inner_text() == money(summary["totalARR"])
    page.get_by_test_id("revenue-chart").locator("canvas").wait_for()
    page.get_by_test_id("cohorts-heatmap").wait_for()
    page.get_by_test_id("movements-table").wait_for()
    with page.expect_download() as d:
        page.get_by_role("button", name="Summary CSV").click()
    path = d.value.path()
    text = open(path, encoding="utf-8").read()
    assert text.splitlines()[0] == "field,value"
    assert f"/totalMRR,{summary['totalMRR']}" in text
    shoot(page, "analytics-manager")


def test_revenue_is_absent_not_zero_for_a_rep(sign_in):
    token = dev_token("sales_rep")
    status, summary = api("GET", "/api/admin/tiers/analytics", token)
    assert status == 200 and "totalMRR" not in summary
    page = sign_in("sales_rep")
    page.get_by_test_id("revenue-redacted").wait_for()
    assert page.get_by_test_id("card-mrr").locator(".stat-value").inner_text() == "—"
    assert "$0" not in page.get_by_test_id("tier-metrics").inner_text()
    # the counts the rep may see are there
    assert page.get_by_test_id("card-active").locator(".stat-value").inner_text() == str(summary["totalActiveSubscriptions"])
    shoot(page, "analytics-rep")
