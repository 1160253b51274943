"""Experiments: create, start, traffic through the public routes, results chart."""

import re

from conftest import api, dev_token, shoot


def test_create_start_and_see_results(sign_in):
    page = sign_in("sales_manager", next="/experiments")
    page.get_by_test_id("experiments-table").wait_for()
    page.get_by_role("link", name="New experiment").click()
    page.get_by_label("Name", exact=True).fill("Platinum price test")
    page.get_by_label("Target tier").select_option("platinum")
    page.get_by_label("Hypothesis").fill("A lower price converts more prospects")
    page.get_by_label("Variant 2 monthly price (USD)").fill("5400")
    page.get_by_label("Variant 1 traffic (%)").fill("60")
    assert page.get_by_text("Traffic adds up to 110% (must be 100%)").is_visible()
    assert page.get_by_role("button", name="Create draft").is_disabled()
    page.get_by_label("Variant 2 traffic (%)").fill("40")
    shoot(page, "experiment-new")
    page.get_by_role("button", name="Create draft").click()
    page.wait_for_url(re.compile(r".*/experiments/(?!new$)[^/]+$"))
    experiment_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name="Start").click()
    page.get_by_test_id("experiment-summary").get_by_text("active").wait_for()

    # Visitors through the public routes: each is assigned, some convert.
    converted = {}
    for i in range(40):
        user = f"visitor-{i}"
        status, assignment = api("POST", f"/api/experiments/{experiment_id}/assign", body={"userId": user})
        assert status == 200, assignment
        variant = assignment["variantId"]
        if i % 3 == 0:
            status, _ = api("POST", f"/api/experiments/{experiment_id}/track", body={"userId": user, "metric": "conversion"})
            assert status in (200, 201)
            converted[variant] = converted.get(variant, 0) + 1
    page.reload()
    page.get_by_test_id("results-chart").locator("canvas").wait_for()
    rows = page.get_by_test_id("results-table").locator("tbody tr")
    assert rows.count() == 2
    status, results = api("GET", f"/api/admin/experiments/{experiment_id}/results", dev_token("sales_manager"))
    assert status == 200
    assert sum(r["participants"] for r in results["results"]) == 40
    table = page.get_by_test_id("results-table").inner_text()
    for r in results["results"]:
        assert r["conversions"] == converted.get(r["variantId"], 0)
        assert str(r["participants"]) in table
    page.get_by_test_id("significance").wait_for()
    shoot(page, "experiment-results")
    page.get_by_role("link", name="← All experiments").click()
    page.get_by_test_id("experiments-table").get_by_role("link", name="Platinum price test").wait_for()
    shoot(page, "experiments-list")
