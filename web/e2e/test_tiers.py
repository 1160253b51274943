"""Tiers: catalog, create with the API's field error beside the field, edit, retire."""

import re

from conftest import api, dev_token, shoot


def test_create_edit_and_retire_a_tier(sign_in):
    page = sign_in("sales_manager", next="/tiers")
    table = page.get_by_test_id("tiers-table")
    table.wait_for()
    assert table.get_by_role("link", name="Power Gold").is_visible()
    assert "$3,600.00" in table.inner_text()
    shoot(page, "tiers-catalog")
    page.get_by_role("link", name="New tier").click()
    page.get_by_label("Tier id").fill("Bad Id")
    page.get_by_label("Name", exact=True).fill("Bronze Trial")
    page.get_by_label("Monthly price (USD)").fill("99")
    page.get_by_label("Yearly price (USD)").fill("990")
    page.get_by_role("button", name="Create tier").click()
    error = page.locator('[data-field="tierId"] .field-error')
    error.wait_for()
    assert "a-z, 0-9" in error.inner_text()
    assert page.get_by_label("Monthly price (USD)").input_value() == "99"
    shoot(page, "tier-new-field-error")
    page.get_by_label("Tier id").fill("bronze-starter")
    page.get_by_role("button", name="Create tier").click()
    page.wait_for_url(re.compile(r".*/tiers/bronze-starter$"))
    page.get_by_test_id("tier-summary").wait_for()
    token = dev_token("sales_manager")
    status, tier = api("GET", "/api/admin/tiers/bronze-starter", token)
    assert status == 200 and tier["prices"] == {"monthly": 9900, "yearly": 99000}

    page.get_by_label("Monthly price (USD)").fill("109.50")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved.").wait_for()
    status, tier = api("GET", "/api/admin/tiers/bronze-starter", token)
    assert tier["prices"]["monthly"] == 10950
    # The save added price version 2; the history shows both, newest first, as the API lists them.
    history = page.get_by_test_id("tier-price-history")
    history.get_by_text("$109.50").wait_for()
    rows = history.locator("tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).inner_text().startswith("v2") and "current" in rows.nth(0).inner_text()
    assert "$99.00" in rows.nth(1).inner_text() and "$990.00" in rows.nth(1).inner_text()
    status, versions = api("GET", "/api/admin/tiers/bronze-starter/prices", token)
    assert status == 200 and [v["priceVersion"] for v in versions["items"]] == [2, 1]
    page.get_by_label("Feature id").fill("priority_support")
    page.get_by_label("Feature name").fill("Priority support")
    page.get_by_role("button", name="Add feature").click()
    features = page.get_by_test_id("tier-features")
    features.get_by_text("priority_support").wait_for()
    features.get_by_role("button", name="Disable Priority support").click()
    features.get_by_role("button", name="Enable Priority support").wait_for()
    status, tier = api("GET", "/api/admin/tiers/bronze-starter", token)
    feature = next(f for f in tier["features"] if f["featureId"] == "priority_support")
    assert feature["enabled"] is False
    shoot(page, "tier-page")

    page.get_by_role("button", name="Retire tier").click()
    page.get_by_role("button", name="Yes, retire").click()
    page.get_by_test_id("tier-summary").get_by_text("archived").wait_for()
    status, tier = api("GET", "/api/admin/tiers/bronze-starter", token)
    assert tier["status"] == "archived"


def test_a_rep_reads_the_catalog_without_editing(sign_in):
    page = sign_in("sales_rep", next="/tiers/gold")
    page.get_by_test_id("tier-summary").wait_for()
    assert page.get_by_role("button", name="Save changes").count() == 0
    assert page.get_by_role("button", name="Retire tier").count() == 0
    assert page.get_by_label("Monthly price (USD)").is_disabled()
    # A rep reads the price history too (tier_management), without editing anything.
    page.get_by_test_id("tier-price-history").get_by_text("v1").wait_for()
