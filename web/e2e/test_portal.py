"""The partner portal: a new partner subscribes with a promotion code through the Stripe
emulator's hosted checkout and lands back in the portal on the paid tier (the webhook
having run), upgrades through the four steps with the proration the API previews,
schedules a downgrade, sees only their own invoices and their usage against limits."""

import re
import time
import uuid

from playwright.sync_api import expect

from conftest import BASE, api, dev_token, shoot


def new_partner(tag: str) -> str:
    email = f"portal-{tag}-{uuid.uuid4().hex[:10]}@example.com"
    status, created = api("POST", "/api/admin/partners", dev_token("admin"),
                          {"companyName": f"Portal {tag} Co", "primaryEmail": email})
    assert status == 201, created
    return created["partnerId"]


def promotion_code() -> str:
    code = f"PORTAL{uuid.uuid4().hex[:8].upper()}"
    token = dev_token("sales_manager")
    status, created = api("POST", "/api/admin/promotions", token, {
        "name": f"Portal {code}", "discountType": "percentage", "discountValue": 10,
        "appliesTo": "first_month", "startDate": "2026-01-01", "endDate": "2099-12-31",
        "promotionCodes": [code],
    })
    assert status == 201, created
    status, live = api("POST", f"/api/admin/promotions/{created['promotionId']}/submit", token)
    assert status == 200 and live["status"] == "active", live
    return code


def eventually(read, ok, what: str, seconds: float = 15):
    """Reads until `ok(value)`: webhooks arrive a moment after the page's action."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"{what}: {value}"
        time.sleep(0.3)


def cents(text: str) -> int:
    """$1,234.56 in a card's text as integer cents."""
    m = re.search(r"-?\$([0-9,]+)\.([0-9]{2})", text)
    assert m, text
    return int(m.group(1).replace(",", "")) * 100 + int(m.group(2))


def test_a_partner_subscribes_with_a_code_upgrades_downgrades_and_sees_only_their_invoices(sign_in):
    partner = new_partner("journey")
    token = dev_token("partner", partner)
    code = promotion_code()
    page = sign_in("partner", partner=partner)
    portal = page.get_by_test_id("partner-portal")
    expect(portal).to_contain_text(partner)
    expect(page.get_by_test_id("current-tier")).to_contain_text("Free")
    shoot(page, "portal-free")

    # A wrong code names the field's problem; the right one goes to Stripe's page.
    page.get_by_label("Promotion code").fill("NOSUCHCODE1")
    page.locator('[data-testid="subscribe-choices"] [data-tier="gold"] button').click()
    expect(page.get_by_test_id("promotion-reasons")).to_be_visible()
    page.get_by_label("Promotion code").fill(code.lower())
    page.locator('[data-testid="subscribe-choices"] [data-tier="gold"] button').click()
    page.wait_for_url("**/checkout/**")
    page.get_by_role("button", name="Subscribe").click()

    # Back in the portal: the page reads again until the webhook has moved the partner.
    page.wait_for_url(f"{BASE}/partner-portal**")
    expect(page.get_by_test_id("current-tier")).to_contain_text("Gold", timeout=20_000)
    expect(page.get_by_test_id("portal-waiting")).to_have_count(0, timeout=20_000)
    status, sub = api("GET", "/api/billing/subscription", token)
    assert status == 200 and sub["tierId"] == "gold" and sub["stripeSubscriptionId"], sub
    # The code's redemption is recorded when Stripe's checkout.session.completed arrives.
    eventually(lambda: api("GET", "/api/promotions/redemptions", token)[1],
               lambda r: len(r["items"]) == 1, "one redemption of the code")
    shoot(page, "portal-paid")

    # Upgrade in four steps: choose, compare, proration (as the API previews it), pay.
    page.locator('[data-testid="upgrade-choices"] [data-tier="platinum"] button').click()
    compare = page.get_by_test_id("upgrade-compare")
    expect(compare).to_contain_text("Power Platinum")
    shoot(page, "portal-upgrade-compare")
    compare.get_by_role("button", name="Continue").click()
    proration = page.get_by_test_id("upgrade-proration")
    expect(proration).to_be_visible()
    status, preview = api("POST", "/api/billing/upgrade/preview", token, {"tierId": "platinum", "billingPeriod": "monthly"})
    assert status == 200, preview
    # Proration is to the second: the page's preview and this one may differ by a cent.
    shown = cents(page.get_by_test_id("due-now").inner_text())
    assert abs(shown - preview["proration"]["amountDueNow"]) <= 1, (shown, preview["proration"])
    assert shown > 0
    shoot(page, "portal-upgrade-proration")
    proration.get_by_role("button", name="and upgrade").click()
    expect(page.get_by_test_id("upgrade-done")).to_contain_text("Power Platinum")
    expect(page.get_by_test_id("current-tier")).to_contain_text("Platinum")

    # Downgrade at the period end: the scheduled change is shown, the tier stays.
    page.locator('[data-testid="downgrade-choices"] [data-tier="gold"] button').click()
    page.get_by_test_id("downgrade-confirm").get_by_role("button", name="Schedule the downgrade").click()
    expect(page.get_by_test_id("scheduled-change")).to_contain_text("Power Gold")
    expect(page.get_by_test_id("current-tier")).to_contain_text("Platinum")
    status, sub = api("GET", "/api/billing/subscription", token)
    assert sub["scheduledChange"]["tierId"] == "gold", sub

    # Invoices: exactly the partner's own, as the API lists them (the upgrade's
    # proration invoice arrives by webhook; Refresh reads everything again).
    mine = eventually(lambda: api("GET", "/api/billing/invoices?limit=10", token)[1],
                      lambda r: len(r["items"]) >= 2, "the first payment and the upgrade's proration")
    page.get_by_role("button", name="Refresh").click()
    rows = page.get_by_test_id("portal-invoices").locator("tbody tr[data-invoice]")
    expect(rows).to_have_count(len(mine["items"]))
    shown = {rows.nth(i).get_attribute("data-invoice") for i in range(rows.count())}
    assert shown == {i["invoiceId"] for i in mine["items"]}

    # Usage against the tier's limits, and the features of the tier.
    status, usage = api("GET", "/api/usage/current", token)
    expect(page.get_by_test_id("usage-table").locator("tbody tr")).to_have_count(len(usage["metrics"]))
    expect(page.get_by_test_id("features-available").locator("li")).not_to_have_count(0)
    shoot(page, "portal-platinum")


def test_cancel_states_the_consequences_and_another_partners_id_is_not_found(sign_in):
    partner = new_partner("cancel")
    token = dev_token("partner", partner)
    page = sign_in("partner", partner=partner)
    page.locator('[data-testid="subscribe-choices"] [data-tier="gold"] button').click()
    page.wait_for_url("**/checkout/**")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_test_id("current-tier")).to_contain_text("Gold", timeout=20_000)

    page.get_by_role("button", name="Cancel my subscription…").click()
    confirm = page.get_by_test_id("cancel-confirm")
    expect(confirm).to_contain_text("You keep Power Gold until")
    expect(confirm).to_contain_text("moves to the free tier")
    page.get_by_label("Why are you leaving? (optional)").fill("browser test")
    confirm.get_by_role("button", name="Cancel at the end of the period").click()
    expect(page.get_by_test_id("cancelled-notice")).to_contain_text("Power Gold")
    status, sub = api("GET", "/api/billing/subscription", token)
    assert sub["status"] == "cancelled" and sub["subscriptionEndDate"], sub
    # The term still runs: no second subscription is offered until it ends.
    expect(page.get_by_test_id("choose-after-term")).to_be_visible()
    expect(page.get_by_test_id("subscribe-choices")).to_have_count(0)

    # Another partner's portal path is not found, as the API answers; the own id works.
    other = new_partner("other")
    page.goto(f"{BASE}/partner-portal/{other}")
    expect(page.get_by_test_id("not-found")).to_be_visible()
    page.goto(f"{BASE}/partner-portal/{partner}")
    expect(page.get_by_test_id("current-tier")).to_contain_text("Gold")
    # Staff screens are not the partner's: their paths lead back to the portal.
    page.goto(f"{BASE}/analytics")
    page.wait_for_url(f"{BASE}/partner-portal")
    expect(page.get_by_test_id("current-tier")).to_contain_text("Gold")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "portal-cancelled")
