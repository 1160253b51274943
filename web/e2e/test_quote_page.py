"""The prospect's quote page: the emailed link opens a document without sign-in, with
its PDF, and Accept / Decline behind a confirmation step."""

import datetime
import json
import os
import re
import urllib.parse
import urllib.request
import uuid

import pytest
from playwright.sync_api import Page, expect

from conftest import BASE, DESKTOP, api, dev_token, shoot
from test_quotes import emailed_link


@pytest.fixture
def open_link(browser):
    """open_link(url) -> a Page in a fresh browser context with no session, which
    records every request the page makes and every uncaught error."""
    contexts = []
    pages: list[Page] = []

    def open_(url: str, context=None) -> Page:
        ctx = context
        if ctx is None:
            ctx = browser.new_context(viewport=DESKTOP, accept_downloads=True)
            ctx.set_default_timeout(10_000)
            contexts.append(ctx)
        page = ctx.new_page()
        page._errors = []  # type: ignore[attr-defined]
        page._requests = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page._errors.append(str(e)))  # type: ignore[attr-defined]
        page.on("request", lambda r: page._requests.append((r.url, r.headers.get("referer"))))  # type: ignore[attr-defined]
        page.goto(url)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        assert not page._errors, f"uncaught errors in the page: {page._errors}"  # type: ignore[attr-defined]
    for ctx in contexts:
        ctx.close()


def staff_quote(body: dict, role: str = "sales_rep") -> dict:
    token = dev_token(role)
    valid = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    status, quote = api("POST", "/api/admin/quotes", token, {"validUntil": valid, **body})
    assert status == 201, quote
    status, sent = api("POST", f"/api/admin/quotes/{quote['quoteId']}/send", token)
    assert status == 200 and sent["emailSent"], sent
    return sent


def assert_token_stays_home(page: Page, token: str) -> None:
    """Every request the page made went to this origin; none carried the token in
    a referrer to anywhere else."""
    origin = urllib.parse.urlparse(BASE).netloc
    for url, referer in page._requests:  # type: ignore[attr-defined]
        assert urllib.parse.urlparse(url).netloc == origin, f"a third-party request: {url}"
        if referer and token in referer:
            assert urllib.parse.urlparse(url).netloc == origin, f"the token in a referrer to {url}"


def test_a_prospect_opens_the_emailed_link_downloads_the_pdf_and_accepts(open_link, sign_in, tmp_path):
    email = f"prospect-{uuid.uuid4().hex[:10]}@page.example.com"
    sent = staff_quote(
        {
            "prospectEmail": email,
            "prospectName": "Rae Prospect",
            "prospectCompany": "Lakeside Realty",
            "baseTier": "gold",
            "billingPeriod": "monthly",
            "commitmentMonths": 12,
            "customizations": {"additionalListings": {"quantity": 3}},
            "discounts": [{"type": "percentage", "value": 10, "reason": "Launch offer"}],
        }
    )
    link = emailed_link(email)
    token = link.rsplit("/", 1)[1]
    assert link == f"{BASE}/quote/{token}", "the email links to the quote page on the host the send came to"

    page = open_link(link)
    doc = page.get_by_test_id("quote-document")
    expect(doc.get_by_role("heading", name=f"Quote {sent['quoteNumber']}")).to_be_visible()
    # The document: customer, lines, discount, totals (cents formatted once), validity, terms.
    expect(doc).to_contain_text("Rae Prospect, Lakeside Realty")
    lines = page.get_by_test_id("quote-lines")
    expect(lines).to_contain_text("Gold plan, billed monthly")
    expect(lines).to_contain_text("Additional listings: 3 × $10.00")
    expect(lines).to_contain_text("Discount 10%: Launch offer")
    cents = sent["finalPrice"]
    expect(page.get_by_test_id("quote-total")).to_have_text(f"${cents // 100:,}.{cents % 100:02d}")
    facts = page.get_by_test_id("quote-facts")
    expect(facts).to_contain_text("12 months")
    valid = datetime.date.fromisoformat(sent["validUntil"])
    expect(facts).to_contain_text(f"{valid.strftime('%b')} {valid.day}, {valid.year}")
    expect(page.get_by_test_id("quote-terms")).not_to_be_empty()
    # No console: no sign-in, no navigation.
    assert page.get_by_test_id("signed-in-role").count() == 0
    assert page.get_by_role("button", name="Sign in").count() == 0
    shoot(page, "prospect-quote-page")

    # The document's response says same-origin, and the token stayed on this origin.
    response = page.request.get(link)
    assert response.headers.get("referrer-policy") == "same-origin"
    assert_token_stays_home(page, token)

    with page.expect_download() as download:
        page.get_by_test_id("quote-pdf-download").click()
    saved = tmp_path / "quote.pdf"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"{sent['quoteNumber']}.pdf"
    assert saved.read_bytes()[:5] == b"%PDF-"

    # Accept, with its confirmation step: Back first changes nothing.
    page.get_by_role("button", name="Accept quote").click()
    step = page.get_by_test_id("accept-step")
    expect(step).to_contain_text(f"Accept quote {sent['quoteNumber']}?")
    page.get_by_role("button", name="Back").click()
    expect(step).to_have_count(0)
    status, still = api("GET", f"/api/admin/quotes/{sent['quoteId']}", dev_token("sales_rep"))
    assert still["status"] == "sent"
    page.get_by_role("button", name="Accept quote").click()
    page.get_by_label("Your name (optional)").fill("Rae Prospect")
    shoot(page, "prospect-quote-accept-step")
    page.get_by_role("button", name="Confirm acceptance").click()
    expect(page.get_by_test_id("quote-accepted-now")).to_contain_text("the quote is accepted")
    expect(page.get_by_role("button", name="Accept quote")).to_have_count(0)
    expect(page.get_by_role("button", name="Decline")).to_have_count(0)
    shoot(page, "prospect-quote-accepted")

    # The staff quote page shows it accepted.
    rep = sign_in("sales_rep", next=f"/quotes/{sent['quoteId']}")
    summary = rep.get_by_test_id("quote-summary")
    expect(summary.locator(".badge").first).to_have_text("accepted")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    expect(rep.get_by_test_id("quote-tracking")).to_contain_text(f"Accepted{today.strftime('%b')} {today.day}, {today.year}")
    status, quote = api("GET", f"/api/admin/quotes/{sent['quoteId']}", dev_token("sales_rep"))
    assert quote["status"] == "accepted" and quote["conversion"]["acceptedByName"] == "Rae Prospect"
    assert quote["conversion"]["partnerCreated"] is True

    # Opening the link again: already accepted, said plainly, nothing to press.
    again = open_link(link)
    expect(again.get_by_test_id("quote-state")).to_contain_text("This quote has already been accepted")
    assert again.get_by_role("button").count() == 0
    expect(again.get_by_test_id("quote-pdf-download")).to_be_visible()
    shoot(again, "prospect-quote-already-accepted")
    assert_token_stays_home(again, token)


def test_an_existing_partner_accepts_and_a_staff_member_sees_the_prospects_view(open_link, sign_in):
    admin = dev_token("admin")
    contact = f"billing-{uuid.uuid4().hex[:10]}@partner.example.com"
    status, partner = api("POST", "/api/admin/partners", admin, {"companyName": "Quayside Lettings", "primaryEmail": contact})
    assert status == 201 and partner["engagementTier"] == "free", partner
    sent = staff_quote(
        {
            "customerId": partner["partnerId"],
            "prospectEmail": partner["primaryEmail"],
            "prospectName": partner["companyName"],
            "baseTier": "gold",
            "billingPeriod": "yearly",
        },
        role="sales_manager",
    )
    assert sent["sentTo"] == partner["primaryEmail"]
    link = emailed_link(partner["primaryEmail"])

    # A signed-in staff member opening the link sees the prospect's page, not the console.
    staff = sign_in("sales_manager", next="/quotes")
    staff.goto(link)
    doc = staff.get_by_test_id("quote-document")
    expect(doc.get_by_role("heading", name=f"Quote {sent['quoteNumber']}")).to_be_visible()
    assert staff.get_by_test_id("signed-in-role").count() == 0
    expect(staff.get_by_test_id("quote-facts")).to_contain_text("(a twelfth of the yearly price)")
    staff.get_by_role("button", name="Accept quote").click()
    staff.get_by_role("button", name="Confirm acceptance").click()
    expect(staff.get_by_test_id("quote-accepted-now")).to_be_visible()
    status, after = api("GET", f"/api/admin/partners/{partner['partnerId']}", admin)
    assert after["engagementTier"] == "gold" and after["pricePerPeriod"] == sent["finalPrice"], after
    status, quote = api("GET", f"/api/admin/quotes/{sent['quoteId']}", admin)
    assert quote["conversion"]["partnerId"] == partner["partnerId"]
    assert quote["conversion"]["partnerCreated"] is False


def test_declining_takes_a_reason_and_a_withdrawn_quote_says_so(open_link):
    email = f"decliner-{uuid.uuid4().hex[:10]}@page.example.com"
    sent = staff_quote({"prospectEmail": email, "prospectName": "Dee Cliner", "baseTier": "gold", "billingPeriod": "monthly"})
    page = open_link(emailed_link(email))
    page.get_by_role("button", name="Decline").click()
    expect(page.get_by_test_id("decline-step")).to_contain_text(f"Decline quote {sent['quoteNumber']}?")
    # The API needs a reason and names the field; the page shows it beside the box.
    page.get_by_role("button", name="Confirm decline").click()
    expect(page.locator("[data-field=reason] .field-error")).to_be_visible()
    page.get_by_label("Reason").fill("The timing is wrong for us")
    shoot(page, "prospect-quote-decline-step")
    page.get_by_role("button", name="Confirm decline").click()
    expect(page.get_by_test_id("quote-declined-now")).to_be_visible()
    assert page.get_by_role("button").count() == 0
    status, quote = api("GET", f"/api/admin/quotes/{sent['quoteId']}", dev_token("sales_rep"))
    assert quote["status"] == "rejected" and quote["rejectionReason"] == "The timing is wrong for us"
    again = open_link(emailed_link(email))
    expect(again.get_by_test_id("quote-state")).to_contain_text("This quote was declined")

    # Withdrawn by the rep: the link says so and offers nothing to press.
    email = f"withdrawn-{uuid.uuid4().hex[:10]}@page.example.com"
    sent = staff_quote({"prospectEmail": email, "prospectName": "Wyn Drawn", "baseTier": "gold", "billingPeriod": "monthly"})
    status, _ = api("POST", f"/api/admin/quotes/{sent['quoteId']}/cancel", dev_token("sales_rep"), {})
    assert status == 200
    gone = open_link(emailed_link(email))
    expect(gone.get_by_test_id("quote-state")).to_contain_text("This quote was withdrawn")
    assert gone.get_by_role("button").count() == 0
    shoot(gone, "prospect-quote-withdrawn")

    # A link that is not (or no longer) a quote's says so.
    broken = open_link(f"{BASE}/quote/{'A' * 43}")
    expect(broken.get_by_test_id("quote-link-problem")).to_contain_text("This link does not open a quote")


def lapse(quote_id: str) -> None:
    """Time passes: the quote's `validUntil` becomes yesterday, written straight into
    DynamoDB Local (the gateway's clock is the real one, and the API refuses a past
    `validUntil`). Credentials and region are the store's local ones, which name the
    table's namespace in DynamoDB Local."""
    yesterday = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    body = {
        "TableName": os.environ["TABLE_NAME"],
        "Key": {"PK": {"S": f"QUOTE#{quote_id}"}, "SK": {"S": "META"}},
        "UpdateExpression": "SET validUntil = :d",
        "ConditionExpression": "attribute_exists(PK)",
        "ExpressionAttributeValues": {":d": {"S": yesterday}},
    }
    req = urllib.request.Request(
        os.environ["DYNAMODB_ENDPOINT"],
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.UpdateItem",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(req) as answer:
        assert answer.status == 200


def test_an_expired_quote_says_so_and_cannot_be_accepted(open_link):
    email = f"lapsed-{uuid.uuid4().hex[:10]}@page.example.com"
    sent = staff_quote({"prospectEmail": email, "prospectName": "Lee Lapsed", "baseTier": "gold", "billingPeriod": "monthly"})
    link = emailed_link(email)
    page = open_link(link)
    expect(page.get_by_role("button", name="Accept quote")).to_be_visible()
    lapse(sent["quoteId"])

    # Opened after the date: the page says it expired, when it was valid until, and
    # offers nothing to press.
    later = open_link(link)
    expect(later.get_by_test_id("quote-state")).to_contain_text("This quote has expired")
    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    expect(later.get_by_test_id("quote-state")).to_contain_text(str(yesterday.year))
    assert later.get_by_role("button").count() == 0
    shoot(later, "prospect-quote-expired")

    # The page opened before the date still shows Accept; pressing it gets the API's
    # refusal, the page turns to the expired state, and the quote stays unaccepted.
    page.get_by_role("button", name="Accept quote").click()
    page.get_by_role("button", name="Confirm acceptance").click()
    # The refusal (409 quote_expired) reloads the quote, whose state now says why.
    expect(page.get_by_test_id("quote-state")).to_contain_text("This quote has expired")
    expect(page.get_by_role("button", name="Accept quote")).to_have_count(0)
    status, quote = api("GET", f"/api/admin/quotes/{sent['quoteId']}", dev_token("sales_rep"))
    assert status == 200 and quote["status"] != "accepted", quote
