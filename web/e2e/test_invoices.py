"""Invoices for staff: the list with filters and totals, CSV, and the Stripe actions."""

from playwright.sync_api import expect

from conftest import api, dev_token, shoot


def rows(page):
    return page.get_by_test_id("invoices-table").locator("tbody tr")


def test_a_manager_filters_refunds_voids_and_resends(sign_in):
    token = dev_token("sales_manager")
    status, listing = api("GET", "/api/admin/invoices?limit=25", token)
    assert status == 200 and listing["items"], "make run's seed leaves invoices"
    totals = listing["totals"]
    page = sign_in("sales_manager", next="/invoices")
    expect(rows(page)).to_have_count(len(listing["items"]))
    for state in ["paid", "open", "void", "uncollectible", "refunded", "partially_refunded"]:
        card = page.get_by_test_id(f"total-{state}")
        assert card.locator(".stat-value").inner_text() == str(totals[state]["count"]), state
        assert totals[state]["count"] > 0, f"the seed has a {state} invoice"
    shoot(page, "invoices")

    # Filter by status: the partly refunded ones.
    page.get_by_label("Status").select_option("partially_refunded")
    status, partly = api("GET", "/api/admin/invoices?status=partially_refunded", token)
    expect(rows(page)).to_have_count(len(partly["items"]))
    target = partly["items"][0]
    row = page.locator(f'tr[data-invoice="{target["invoiceId"]}"]')
    expect(row.locator(".badge")).to_have_text("partially refunded")

    # Refund 100.00 more of it: the form checks the remainder, the API records it.
    row.get_by_role("button", name="Refund").click()
    form = page.get_by_test_id("refund-form")
    left = target["amountPaid"] - target["refundedAmount"]
    form.get_by_label("Amount").fill(f"{(left + 1) / 100:.2f}")
    expect(form.get_by_role("button", name="Refund")).to_be_disabled()
    form.get_by_label("Amount").fill("100.00")
    form.get_by_label("Reason").fill("browser test")
    shoot(page, "invoices-refund")
    form.get_by_role("button", name="Refund").click()
    expect(page.get_by_test_id("invoice-notice")).to_contain_text("Refunded $100.00")
    status, after = api("GET", f"/api/admin/invoices?partnerId={target['partnerId']}", token)
    same = next(i for i in after["items"] if i["invoiceId"] == target["invoiceId"])
    assert same["refundedAmount"] == target["refundedAmount"] + 10_000

    # Void the open invoice (after confirming).
    page.get_by_label("Status").select_option("open")
    status, open_ = api("GET", "/api/admin/invoices?status=open", token)
    first_open = open_["items"][0]
    expect(rows(page)).to_have_count(len(open_["items"]))
    page.once("dialog", lambda d: d.accept())
    page.locator(f'tr[data-invoice="{first_open["invoiceId"]}"]').get_by_role("button", name="Void").click()
    expect(page.get_by_test_id("invoice-notice")).to_contain_text("is void")
    expect(page.locator(f'tr[data-invoice="{first_open["invoiceId"]}"]')).to_have_count(0)
    status, voided = api("GET", f"/api/admin/invoices?partnerId={first_open['partnerId']}&status=void", token)
    assert first_open["invoiceId"] in [i["invoiceId"] for i in voided["items"]]

    # Resend a paid one; export the paid ones as CSV.
    page.get_by_label("Status").select_option("paid")
    status, paid = api("GET", "/api/admin/invoices?status=paid", token)
    expect(rows(page)).to_have_count(len(paid["items"]))
    page.locator(f'tr[data-invoice="{paid["items"][0]["invoiceId"]}"]').get_by_role("button", name="Resend").click()
    expect(page.get_by_test_id("invoice-notice")).to_contain_text("emailing")
    with page.expect_download() as d:
        page.get_by_role("button", name="Export CSV").click()
    text = open(d.value.path(), encoding="utf-8").read()
    assert text.startswith("invoiceId,invoiceNumber,partnerId")
    for item in paid["items"]:
        assert item["invoiceId"] in text
    assert first_open["invoiceId"] not in text


def test_a_rep_sees_their_accounts_without_actions_and_bad_dates_name_the_field(sign_in):
    page = sign_in("sales_rep", next="/invoices")
    table = page.get_by_test_id("invoices-table")
    table.wait_for()
    assert table.get_by_role("columnheader", name="Actions").count() == 0
    expect(table.get_by_role("button")).to_have_count(0)
    page.get_by_label("From").fill("2026-03-01")
    page.get_by_label("To").fill("2026-02-01")
    field = page.locator('[data-field="to"]')
    expect(field.locator(".field-error")).to_contain_text("before")
    shoot(page, "invoices-rep")
