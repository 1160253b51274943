"""Promotions: a field error shown beside its field, then fixed; approval by a second
manager; generated codes."""

import re

from conftest import api, dev_token, shoot


def test_create_fix_submit_approve_as_second_manager_and_generate_codes(sign_in):
    page = sign_in("sales_manager", next="/promotions")
    page.get_by_test_id("promotions-table").wait_for()
    assert page.get_by_role("link", name="Platinum annual 35").is_visible()
    shoot(page, "promotions-list")
    page.get_by_role("link", name="New promotion").click()
    page.get_by_label("Name").fill("Spring push 30")
    page.get_by_label("Description").fill("Thirty percent off for the spring campaign")
    page.get_by_label("Discount (%)").fill("150")
    page.get_by_role("button", name="Create draft").click()
    # The API's message, beside the field it names; what was typed is kept.
    error = page.locator('[data-field="discountValue"] .field-error')
    error.wait_for()
    assert "between 0 and 100" in error.inner_text()
    assert page.get_by_label("Name").input_value() == "Spring push 30"
    shoot(page, "promotion-new-field-error")
    page.get_by_label("Discount (%)").fill("30")
    page.get_by_role("button", name="Create draft").click()
    page.wait_for_url(re.compile(r".*/promotions/promo_[0-9a-z]+$"))
    promotion_id = page.url.rsplit("/", 1)[1]
    # a draft can be edited
    page.get_by_role("button", name="Edit").click()
    page.get_by_test_id("promotion-form").get_by_label("Discount (%)").fill("25")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_test_id("promotion-summary").get_by_text("25% off").wait_for()
    # A promotion that needs a code cannot be submitted without one.
    assert page.get_by_role("button", name="Submit for approval").is_disabled()
    page.get_by_label("How many").fill("3")
    page.get_by_label("Prefix").fill("SPRING")
    page.get_by_role("button", name="Generate codes").click()
    page.get_by_role("heading", name="Codes (3)").wait_for()
    codes = page.get_by_test_id("codes").locator("code").all_inner_texts()
    assert len(codes) == 3 and all(c.startswith("SPRING") for c in codes)
    page.get_by_role("button", name="Submit for approval").click()
    # Above the 20 % policy: a second person must approve, never the creator.
    page.get_by_test_id("own-approval").wait_for()
    assert page.get_by_role("button", name="Approve").count() == 0

    second = sign_in("sales_manager", user="second", next=f"/promotions/{promotion_id}")
    second.get_by_role("button", name="Approve").click()
    second.get_by_test_id("approved-by").wait_for()
    assert second.get_by_test_id("approved-by").inner_text() == "dev-sales_manager-second"
    # codes can still be added once it runs
    second.get_by_label("How many").fill("2")
    second.get_by_label("Prefix").fill("LATE")
    second.get_by_role("button", name="Generate codes").click()
    second.get_by_role("heading", name="Codes (5)").wait_for()
    codes = second.get_by_test_id("codes").locator("code").all_inner_texts()
    assert sum(c.startswith("LATE") for c in codes) == 2
    shoot(second, "promotion-page")

    status, promotion = api("GET", f"/api/admin/promotions/{promotion_id}", dev_token("sales_manager"))
    assert status == 200
    assert promotion["status"] == "active" and promotion["discountValue"] == 25
    assert sorted(promotion["promotionCodes"]) == sorted(codes)
    assert promotion["approvedBy"] == "dev-sales_manager-second"
