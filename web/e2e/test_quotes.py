"""Quotes: a rep's quote above their authority, approved by a manager, then sent."""

import json
import os
import re
import urllib.request

from playwright.sync_api import expect

from conftest import api, dev_token, shoot


def emailed_link(to: str) -> str:
    """The prospect's link (the quote page, `{host}/quote/{token}`) from the last quote
    email to `to`, read from the SES emulator's store."""
    with urllib.request.urlopen(f"{os.environ['TIERDESK_SES_URL']}/store") as r:
        emails = json.load(r)["emails"]
    mine = [e for e in emails if to in json.dumps(e["destination"])]
    assert mine, f"no email to {to}"
    return re.findall(r"https?://[^\s\"<>]+/quote/[A-Za-z0-9_-]{43}", mine[-1]["body"]["text"])[0]


def emailed_view_path(to: str) -> str:
    """The public API route of that link's quote."""
    return "/api/quotes/view/" + emailed_link(to).rsplit("/", 1)[1]


def test_quote_above_rep_authority_is_approved_by_a_manager_then_sent(sign_in):
    rep = sign_in("sales_rep", next="/quotes")
    rep.get_by_test_id("quotes-table").wait_for()
    shoot(rep, "quotes-list-rep")
    rep.get_by_role("link", name="New quote").click()
    rep.get_by_label("Prospect name").fill("Dana Prospect")
    rep.get_by_label("Prospect email").fill("dana@prospect.example.com")
    rep.get_by_label("Company").fill("Prospect Realty")
    rep.get_by_label("Tier").select_option("gold")
    rep.get_by_role("button", name="Add discount").click()
    rep.get_by_label("Discount 1 value").fill("20")
    rep.get_by_label("Discount 1 reason").fill("Multi-office deal")
    # Live pricing from the catalog: $3,600.00 less 20 %.
    assert rep.get_by_test_id("estimate-total").inner_text() == "$2,880.00"
    notice = rep.get_by_test_id("authority-notice")
    assert notice.is_visible() and "above your authority (15%)" in notice.inner_text()
    shoot(rep, "quote-builder-rep")
    rep.get_by_role("button", name="Save and submit for approval").click()
    rep.wait_for_url(re.compile(r".*/quotes/(?!new$)[^/]+$"))
    quote_id = rep.url.rsplit("/", 1)[1]
    rep.get_by_test_id("approval-notice").wait_for()
    assert rep.get_by_test_id("quote-total").inner_text() == "$2,880.00"
    assert rep.get_by_role("button", name="Send to prospect").count() == 0
    assert rep.get_by_role("button", name="Approve").count() == 0

    manager = sign_in("sales_manager", next=f"/quotes/{quote_id}")
    manager.get_by_role("button", name="Approve").click()
    manager.get_by_test_id("approved-notice").wait_for()
    assert "dev-sales_manager" in manager.get_by_test_id("approved-notice").inner_text()

    rep.reload()
    rep.get_by_role("button", name="Send to prospect").click()
    rep.get_by_text("Sent to dana@prospect.example.com.").wait_for()
    # the prospect opens the emailed link; the tracking shows the view
    status, offer = api("GET", emailed_view_path("dana@prospect.example.com"))
    assert status == 200 and offer["finalPrice"] == 288000
    rep.reload()
    expect(rep.get_by_test_id("quote-tracking")).to_contain_text("1 time")
    rep.get_by_role("button", name="Preview PDF").click()
    rep.get_by_test_id("quote-pdf").wait_for()
    shoot(rep, "quote-page-sent")

    status, quote = api("GET", f"/api/admin/quotes/{quote_id}", dev_token("sales_manager"))
    assert status == 200
    assert quote["status"] == "sent" and quote["finalPrice"] == 288000
    assert quote["approval"]["outcome"] == "approved"
    status, pdf = api("GET", f"/api/admin/quotes/{quote_id}/pdf", dev_token("sales_rep"))
    assert status == 200 and pdf[:5] == b"%PDF-"


def test_a_managers_quote_with_extra_listings_is_priced_by_the_server(sign_in):
    page = sign_in("sales_manager", next="/quotes/new")
    page.get_by_label("Prospect name").fill("Lee Buyer")
    page.get_by_label("Prospect email").fill("lee@buyer.example.com")
    page.get_by_label("Tier").select_option("gold")
    page.get_by_label("Additional listings").fill("5")
    page.get_by_role("button", name="Add discount").click()
    page.get_by_label("Discount 1 value").fill("10")
    page.get_by_label("Discount 1 reason").fill("Launch")
    assert page.get_by_test_id("authority-notice").count() == 0, "10 % is within a manager's 30 %"
    page.get_by_role("button", name="Save quote").click()
    page.wait_for_url(re.compile(r".*/quotes/(?!new$)[^/]+$"))
    quote_id = page.url.rsplit("/", 1)[1]
    lines = page.get_by_test_id("quote-lines")
    lines.get_by_text("Additional listings × 5").wait_for()
    status, quote = api("GET", f"/api/admin/quotes/{quote_id}", dev_token("sales_manager"))
    assert status == 200 and quote["status"] == "draft" and not quote["approvalRequired"]
    cents = quote["finalPrice"]
    assert page.get_by_test_id("quote-total").inner_text() == f"${cents // 100:,}.{cents % 100:02d}"
    assert page.get_by_role("button", name="Send to prospect").is_visible()


def test_custom_limits_need_approval_and_editing_an_approved_quote_returns_it_to_draft(sign_in):
    rep = sign_in("sales_rep", next="/quotes/new")
    rep.get_by_label("Prospect name").fill("Kim Broker")
    rep.get_by_label("Prospect email").fill("kim@broker.example.com")
    rep.get_by_label("Tier").select_option("gold")
    rep.get_by_role("button", name="Add custom limit").click()
    rep.get_by_label("Custom limit 1 metric").select_option("listings")
    rep.get_by_label("Custom limit 1 value").fill("50")
    # Gold allows 10 listings: 50 is more than the tier grants, which a rep may not give alone.
    assert "Tier: 10" in rep.get_by_test_id("custom-limit-1").inner_text()
    notice = rep.get_by_test_id("authority-notice")
    expect(notice).to_contain_text("Custom limits above the tier's (Listings)")
    shoot(rep, "quote-builder-custom-limits")
    rep.get_by_role("button", name="Save and submit for approval").click()
    rep.wait_for_url(re.compile(r".*/quotes/(?!new$)[^/]+$"))
    quote_id = rep.url.rsplit("/", 1)[1]
    rep.get_by_test_id("approval-notice").wait_for()
    expect(rep.get_by_test_id("quote-lines")).to_contain_text("Custom limit: Listings 50")
    status, quote = api("GET", f"/api/admin/quotes/{quote_id}", dev_token("sales_rep"))
    assert quote["status"] == "pending_approval" and quote["customizations"]["customLimits"] == {"listings": 50}

    manager = sign_in("sales_manager", next=f"/quotes/{quote_id}")
    manager.get_by_role("button", name="Approve").click()
    manager.get_by_test_id("approved-notice").wait_for()

    # The rep edits the approved quote: a 5 % discount, the limit kept. The editor says
    # what saving does; the saved quote is a draft again, its approval gone, and it
    # needs a new approval before it can be sent.
    rep.reload()
    rep.get_by_test_id("approved-notice").wait_for()
    rep.get_by_role("button", name="Edit quote").click()
    edit_notice = rep.get_by_test_id("edit-notice")
    expect(edit_notice).to_contain_text("clears dev-sales_manager's approval")
    assert rep.get_by_label("Custom limit 1 value").input_value() == "50"
    assert rep.get_by_label("Prospect name").input_value() == "Kim Broker"
    rep.get_by_role("button", name="Add discount").click()
    rep.get_by_label("Discount 1 value").fill("5")
    rep.get_by_label("Discount 1 reason").fill("Early signature")
    expect(edit_notice).to_contain_text("need approval again")
    shoot(rep, "quote-edit-approved")
    rep.get_by_role("button", name="Save changes").click()
    expect(rep.get_by_test_id("edited-notice")).to_contain_text("The approval was cleared: the quote is back in draft.")
    summary = rep.get_by_test_id("quote-summary")
    expect(summary.locator(".badge").first).to_have_text("draft")
    # the page reloads the quote after the save: wait for the cleared approval to show
    expect(rep.get_by_test_id("approved-notice")).to_have_count(0)
    rep.get_by_role("button", name="Request approval").wait_for()
    assert rep.get_by_role("button", name="Send to prospect").count() == 0
    expect(rep.get_by_test_id("quote-total")).to_have_text("$3,420.00")
    status, quote = api("GET", f"/api/admin/quotes/{quote_id}", dev_token("sales_rep"))
    assert status == 200 and quote["status"] == "draft" and quote["approvalRequired"] is True
    assert "approval" not in quote or quote["approval"] is None
    assert quote["finalPrice"] == 342000 and quote["version"] >= 3

    # A second edit brings the limit within the tier's: no approval needed, it can be sent.
    rep.get_by_role("button", name="Edit quote").click()
    rep.get_by_label("Custom limit 1 value").fill("8")
    assert rep.get_by_test_id("authority-notice").count() == 0
    rep.get_by_role("button", name="Save changes").click()
    expect(rep.get_by_test_id("edited-notice")).to_contain_text("Saved. The quote is in draft.")
    rep.get_by_role("button", name="Send to prospect").wait_for()
    status, quote = api("GET", f"/api/admin/quotes/{quote_id}", dev_token("sales_rep"))
    assert quote["customizations"]["customLimits"] == {"listings": 8} and quote["approvalRequired"] is False
