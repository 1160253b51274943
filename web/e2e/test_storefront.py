"""The public pricing storefront (/pricing): a visitor picks a segment, compares its
tiers, sees a seasonal price with its reason, takes the upsell offer, adds an add-on,
creates a partner account and pays through the Stripe emulator with a promotion code,
and lands in the portal on the new tier (the webhook having run). The funnel events
count exactly once each; a pricing experiment's visitor sees their variant's price and
is counted as a participant once."""

import datetime
import json
import uuid

from playwright.sync_api import expect

from conftest import BASE, PHONE, api, dev_token, shoot
from test_portal import cents, eventually, promotion_code


def tiers_of(segment: str) -> list[dict]:
    status, page = api("GET", f"/api/segments/{segment}")
    assert status == 200, page
    return [t for level in page["tiers"] for t in level["tiers"]]


def funnel(segment: str) -> dict:
    status, report = api("GET", "/api/admin/analytics/storefront", dev_token("admin"))
    assert status == 200, report
    return next(s["funnel"] for s in report["segments"] if s["segmentId"] == segment)


def rule_in_force_now(tier_id: str, percent: int) -> str:
    """A pricing rule on one tier whose start-month window holds today."""
    month = datetime.date.today().month
    window = {"from": 12 if month == 1 else month - 1, "to": 1 if month == 12 else month + 1}
    rule_id = f"holiday-{uuid.uuid4().hex[:8]}"
    status, rule = api("POST", "/api/admin/pricing-rules", dev_token("sales_manager"), {
        "ruleId": rule_id, "name": "Holiday season", "priority": 5,
        "condition": {"startMonths": window, "tiers": [tier_id]},
        "action": {"type": "percentage", "basisPoints": percent * 100},
    })
    assert status == 201, rule
    return rule_id


def test_a_visitor_compares_takes_the_upsell_signs_up_and_pays_with_a_code(browser):
    signature = tiers_of("signature")
    level1, level2 = signature[0], signature[1]
    rule = rule_in_force_now(level2["tierId"], 10)
    try:
        ruled = level2["prices"]["monthly"] * 110 // 100
        code = promotion_code()
        before = funnel("signature")
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        ctx.set_default_timeout(10_000)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))

        # No sign-in: the segment selector and the first segment's tiers.
        page.goto(f"{BASE}/pricing")
        expect(page.locator("[data-segment]")).to_have_count(3)
        expect(page.get_by_test_id("storefront-tiers")).to_be_visible()
        shoot(page, "pricing")

        page.locator("[data-segment=signature]").click()
        page.wait_for_url("**/pricing/signature")
        card = page.locator(f'[data-tier="{level2["tierId"]}"]')
        expect(card.get_by_test_id(f'price-reason-{level2["tierId"]}')).to_have_text("Holiday season +10%")
        assert cents(card.locator(".sf-amount").inner_text()) == ruled
        expect(page.locator(".sf-badge")).to_have_count(1)
        page.get_by_role("button", name="Compare every feature").click()
        expect(page.get_by_test_id("comparison-table")).to_be_visible()
        expect(page.get_by_test_id("comparison-table").locator("thead th")).to_have_count(1 + len(signature))

        # The level-1 tier: the rules engine's offer, as the seed's modal.
        page.locator(f'[data-tier="{level1["tierId"]}"] button').click()
        modal = page.get_by_test_id("upsell-modal")
        expect(modal).to_be_visible()
        expect(modal).to_contain_text(level2["name"])
        shoot(page, "pricing-upsell")
        modal.get_by_role("button", name=f'Switch to {level2["name"]}').click()
        expect(modal).to_have_count(0)
        panel = page.get_by_test_id("plan-panel")
        expect(panel).to_contain_text(f'Your plan: {level2["name"]}')

        # An add-on: the API prices the total (tier after the rule + add-on).
        addon = page.locator("[data-addon]").first
        addon_id = addon.get_attribute("data-addon")
        addon.check()
        status, quoted = api("POST", "/api/storefront/price",
                             body={"tierId": level2["tierId"], "addOns": [addon_id]})
        assert status == 200 and quoted["total"] > ruled, quoted
        expect(page.get_by_test_id("plan-total")).to_contain_text(f'{quoted["total"] / 100:,.2f}')
        shoot(page, "pricing-plan")

        # Checkout: the portal asks the visitor to sign in or create an account.
        page.get_by_role("button", name="Continue to checkout").click()
        page.wait_for_url("**/partner-portal?plan=*")
        expect(page.get_by_test_id("portal-signed-out")).to_contain_text("finish your purchase")
        shoot(page, "portal-sign-up-step")
        page.get_by_role("button", name="Create a partner account").click()
        email = f"visitor-{uuid.uuid4().hex[:10]}@brightstay.example"
        page.get_by_label("Work email").fill(email)
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_test_id("planned-purchase")).to_be_visible()
        expect(page.get_by_test_id("planned-total")).to_contain_text(f'{quoted["total"] / 100:,.2f}')
        status, found = api("GET", f"/api/admin/partners?email={email}", dev_token("admin"))
        assert status == 200 and len(found["items"]) == 1, found
        partner = found["items"][0]["partnerId"]
        token = dev_token("partner", partner)
        shoot(page, "portal-planned-purchase")

        page.get_by_label("Promotion code").fill(code)
        page.get_by_test_id("plan-pay").click()
        page.wait_for_url("**/checkout/**")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_url(f"{BASE}/partner-portal**")
        expect(page.get_by_test_id("current-tier")).to_contain_text(level2["name"], timeout=20_000)
        sub = eventually(lambda: api("GET", "/api/billing/subscription", token)[1],
                         lambda s: s.get("tierId") == level2["tierId"], "the webhook moved the partner")
        assert sub["pricePerPeriod"] == ruled, sub
        invoices = eventually(lambda: api("GET", "/api/billing/invoices", token)[1],
                              lambda i: len(i.get("items", [])) == 1, "the first invoice")
        first = invoices["items"][0]
        # The code takes 10 % off the first month of everything on the invoice.
        assert first["amount"] == quoted["total"] - (quoted["total"] * 10 + 50) // 100, (first, quoted)
        shoot(page, "portal-after-storefront-checkout")

        # Each funnel step counted exactly once.
        after = funnel("signature")
        delta = {k: after[k] - before[k] for k in after}
        assert delta == {"segmentSelected": 1, "tierViewed": 1, "tierCompared": 1, "upsellShown": 1,
                         "upsellAccepted": 1, "checkoutStarted": 1}, delta
        assert not errors, errors
        ctx.close()
    finally:
        status, stored = api("GET", "/api/admin/pricing-rules", dev_token("admin"))
        version = next(r["version"] for r in stored["items"] if r["ruleId"] == rule)
        api("DELETE", f"/api/admin/pricing-rules/{rule}?version={version}", dev_token("admin"))


def test_a_visitor_in_a_pricing_experiment_sees_their_variant_and_counts_once(browser):
    luxury = tiers_of("luxury")
    target = luxury[0]
    manager = dev_token("sales_manager")
    status, exp = api("POST", "/api/admin/experiments", manager, {
        "name": f"Luxury entry price {uuid.uuid4().hex[:6]}", "hypothesis": "A lower entry price converts more",
        "targetTier": target["tierId"], "minSampleSize": 1,
        "variants": [
            {"variantId": "control", "name": "Control", "isControl": True, "allocation": 50},
            {"variantId": "lower", "name": "Lower", "allocation": 50,
             "pricing": {"monthly": target["prices"]["monthly"] - 100_000}},
        ],
    })
    assert status == 201, exp
    eid = exp["experimentId"]
    status, started = api("POST", f"/api/admin/experiments/{eid}/start", manager)
    assert status == 200, started
    try:
        ctx = browser.new_context(viewport=PHONE)
        page = ctx.new_page()
        for _ in range(2):
            page.goto(f"{BASE}/pricing/luxury")
            expect(page.get_by_test_id("storefront-tiers")).to_be_visible()
            page.wait_for_load_state("networkidle")
        visitor = page.evaluate("localStorage.getItem('tierdesk.visitor')")
        status, seen = api("GET", f"/api/segments/luxury?userId={visitor}")
        shown = next(t for lvl in seen["tiers"] for t in lvl["tiers"] if t["tierId"] == target["tierId"])
        assert shown["experiment"]["experimentId"] == eid, shown
        card = page.locator(f'[data-tier="{target["tierId"]}"] .sf-amount')
        assert cents(card.inner_text()) == shown["pricing"]["monthly"]["price"]
        status, results = api("GET", f"/api/admin/experiments/{eid}/results", manager)
        assert status == 200, results
        participants = sum(v["participants"] for v in results["results"])
        assert participants == 1, json.dumps(results)[:400]

        # The visitor buys the tier: Checkout charges the price they were shown, and
        # the portal reports the conversion once (a reload reports nothing more).
        page.locator(f'[data-tier="{target["tierId"]}"] button').click()
        modal = page.get_by_test_id("upsell-modal")
        expect(modal).to_be_visible()
        modal.get_by_role("button", name="No thanks").click()
        page.get_by_role("button", name="Continue to checkout").click()
        page.get_by_role("button", name="Create a partner account").click()
        email = f"variant-{uuid.uuid4().hex[:10]}@luxestay.example"
        page.get_by_label("Work email").fill(email)
        page.get_by_role("button", name="Create account").click()
        page.get_by_test_id("plan-pay").click()
        page.wait_for_url("**/checkout/**")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_url(f"{BASE}/partner-portal**")
        expect(page.get_by_test_id("current-tier")).to_contain_text(target["name"], timeout=20_000)
        expect(page.get_by_test_id("portal-waiting")).to_have_count(0, timeout=20_000)
        _, found = api("GET", f"/api/admin/partners?email={email}", dev_token("admin"))
        token = dev_token("partner", found["items"][0]["partnerId"])
        sub = api("GET", "/api/billing/subscription", token)[1]
        assert sub["pricePerPeriod"] == shown["pricing"]["monthly"]["price"], (sub, shown["pricing"])
        page.reload()
        expect(page.get_by_test_id("current-tier")).to_contain_text(target["name"])
        page.wait_for_load_state("networkidle")
        results = api("GET", f"/api/admin/experiments/{eid}/results", manager)[1]
        variant = next(v for v in results["results"] if v["variantId"] == shown["experiment"]["variantId"])
        assert (variant["participants"], variant["conversions"]) == (1, 1), variant
        ctx.close()
    finally:
        api("POST", f"/api/admin/experiments/{eid}/cancel", manager)


def test_declining_the_offer_raised_at_checkout_goes_on_to_checkout_on_a_phone(browser):
    essential = tiers_of("essential")
    level2 = next(t for t in essential if t["tierLevel"] == 2)
    ctx = browser.new_context(viewport=PHONE)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto(f"{BASE}/pricing/essential")
    page.locator(f'[data-tier="{level2["tierId"]}"] button').click()
    addons = page.locator("[data-addon]")
    expect(addons.first).to_be_visible()
    chosen = [addons.nth(i).get_attribute("data-addon") for i in range(2)]
    for i in range(2):
        addons.nth(i).check()
    page.get_by_role("button", name="Continue to checkout").click()
    modal = page.get_by_test_id("upsell-modal")
    expect(modal).to_contain_text("2 add-ons selected")
    modal.get_by_role("button", name="No thanks").click()
    page.wait_for_url("**/partner-portal?plan=*")
    query = page.url.split("?", 1)[1]
    assert f"plan={level2['tierId']}" in query and f"addOns={chosen[0]}%2C{chosen[1]}" in query, query
    expect(page.get_by_test_id("portal-signed-out")).to_be_visible()
    ctx.close()


def test_a_grandfathered_subscriber_is_told_until_when_their_price_holds(sign_in):
    """A price change under a grandfatherMonths constraint: the subscriber's portal
    says the kept price lasts until the day the daily cron will move them."""
    luxury = tiers_of("luxury")
    tier = next(t for t in luxury if t["tierLevel"] == 3)
    email = f"kept-{uuid.uuid4().hex[:10]}@example.com"
    status, created = api("POST", "/api/admin/partners", dev_token("admin"),
                          {"companyName": "Kept Price Co", "primaryEmail": email})
    assert status == 201, created
    partner = created["partnerId"]
    page = sign_in("partner", partner=partner)
    page.locator(f'[data-testid="subscribe-choices"] [data-tier="{tier["tierId"]}"] button').click()
    page.wait_for_url("**/checkout/**")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(f"{BASE}/partner-portal**")
    expect(page.get_by_test_id("current-tier")).to_contain_text(tier["name"], timeout=20_000)
    expect(page.get_by_test_id("portal-waiting")).to_have_count(0, timeout=20_000)

    admin = dev_token("admin")
    status, _ = api("PUT", f"/api/admin/pricing-constraints/tier/{tier['tierId']}", admin,
                    {"version": 0, "constraints": {"grandfatherMonths": 3}})
    assert status == 200
    status, current = api("GET", f"/api/admin/tiers/{tier['tierId']}", admin)
    new = {"monthly": current["prices"]["monthly"] + 50_000, "yearly": current["prices"]["yearly"] + 600_000}
    status, changed = api("PUT", f"/api/admin/tiers/{tier['tierId']}?approveImpact=true", admin,
                          {"version": current["version"], "prices": new})
    assert status == 200 and changed["grandfatheredUntil"], changed
    until = datetime.date.fromisoformat(changed["grandfatheredUntil"])
    page.reload()
    banner = page.get_by_test_id("kept-price")
    expect(banner).to_contain_text(f"until {until.strftime('%b')}")
    expect(banner).to_contain_text(str(until.year))
    expect(banner).to_contain_text(f'{new["monthly"] / 100:,.2f}')
    shoot(page, "portal-grandfathered-price")


def test_a_subscriber_attaches_an_add_on_in_the_portal(sign_in):
    email = f"addon-{uuid.uuid4().hex[:10]}@example.com"
    status, created = api("POST", "/api/admin/partners", dev_token("admin"),
                          {"companyName": "Add-on Later Co", "primaryEmail": email})
    assert status == 201, created
    partner = created["partnerId"]
    page = sign_in("partner", partner=partner)
    page.locator('[data-testid="subscribe-choices"] [data-tier="gold"] button').click()
    page.wait_for_url("**/checkout/**")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(f"{BASE}/partner-portal**")
    expect(page.get_by_test_id("current-tier")).to_contain_text("Gold", timeout=20_000)
    expect(page.get_by_test_id("portal-waiting")).to_have_count(0, timeout=20_000)

    section = page.get_by_test_id("portal-add-ons")
    save = section.get_by_role("button", name="Save add-ons")
    expect(save).to_be_disabled()
    box = section.locator("[data-addon]").first
    addon_id = box.get_attribute("data-addon")
    box.check()
    status, quoted = api("POST", "/api/storefront/price", body={"tierId": "gold", "addOns": [addon_id]})
    assert status == 200, quoted
    total = quoted["addOns"]["total"]
    expect(section.get_by_test_id("add-ons-total")).to_contain_text(f"{total / 100:,.2f}")
    save.click()
    expect(section).to_contain_text("on your plan")
    expect(page.get_by_test_id("current-price")).to_contain_text(f"plus ${total / 100:,.2f} of add-ons")
    _, sub = api("GET", "/api/billing/subscription", dev_token("partner", partner))
    assert [a["addOnId"] for a in sub["addOns"]] == [addon_id], sub
    shoot(page, "portal-add-ons")
