"""Sign-in and role-aware navigation."""

from conftest import BASE, shoot

NAV = {
    "sales_rep": ["Analytics", "Tiers", "Partners", "Subscriptions", "Invoices", "Journeys", "Quotes"],
    "sales_manager": ["Analytics", "Tiers", "Partners", "Subscriptions", "Invoices", "Journeys", "Promotions", "Quotes", "Experiments", "Forecast"],
    "admin": ["Analytics", "Tiers", "Partners", "Subscriptions", "Invoices", "Journeys", "Promotions", "Quotes", "Experiments", "Forecast"],
}


def test_each_staff_role_sees_exactly_its_screens(sign_in):
    for role, expected in NAV.items():
        page = sign_in(role)
        assert page.url == f"{BASE}/analytics", "dev sign-in lands on the role's home screen"
        labels = page.locator("#sidenav a").all_inner_texts()
        assert labels == expected, role
        role_label = {"sales_rep": "Sales rep", "sales_manager": "Sales manager", "admin": "Admin"}[role]
        assert role_label in page.get_by_test_id("signed-in-role").inner_text()


def test_a_rep_opening_promotions_by_url_is_not_allowed(sign_in):
    page = sign_in("sales_rep", next="/promotions")
    assert page.get_by_test_id("not-allowed").is_visible()
    assert "Promotions is not available" in page.get_by_test_id("not-allowed").inner_text()
    shoot(page, "not-allowed-rep-promotions")


def test_sign_in_page_and_partner_sign_in(browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{BASE}/dev/sign-in")
    page.get_by_label("Role", exact=True).select_option("partner")
    options = page.locator("#partner option").all()
    partner_id = options[1].get_attribute("value")
    page.get_by_label("Partner (for the partner role)").select_option(partner_id)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("partner-portal").wait_for()
    assert page.url == f"{BASE}/partner-portal"
    assert partner_id in page.get_by_test_id("partner-portal").inner_text()
    # a partner is offered none of the staff screens
    assert page.locator("#sidenav a").count() == 0
    ctx.close()


def test_unknown_console_path_and_signed_out(browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{BASE}/analytics")
    assert page.get_by_text("You are not signed in").is_visible()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{BASE}/dev/sign-in?next=%2Fanalytics")
    ctx.close()


def test_phone_width_menu_and_keyboard(sign_in):
    page = sign_in("sales_manager")
    page.set_viewport_size({"width": 390, "height": 844})
    nav = page.locator("#sidenav")
    assert not nav.is_visible()
    page.get_by_role("button", name="Menu").click()
    assert nav.is_visible()
    nav.get_by_role("link", name="Quotes").click()
    page.get_by_test_id("quotes-table").wait_for()
    assert not nav.is_visible(), "the menu closes after a choice"
    # keyboard: after a choice, Tab continues in the new screen
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "New quote"
    # and on a fresh page the skip link comes first
    page.reload()
    page.get_by_test_id("quotes-table").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_an_expired_session_asks_to_sign_in_again(sign_in):
    page = sign_in("sales_rep")
    page.evaluate("sessionStorage.setItem('tierdesk.devToken', 'x.eyJleHAiOjk5OTk5OTk5OTksImNvZ25pdG86Z3JvdXBzIjpbInNhbGVzX3JlcCJdfQ.x')")
    page.reload()
    page.get_by_text("Your session has ended.").first.wait_for()
    page.get_by_role("button", name="Sign in again").first.click()
    page.wait_for_url("**/dev/sign-in?next=%2Fanalytics")


SCRIPTS = """() => performance.getEntriesByType('resource')
  .map(e => new URL(e.name).pathname).filter(p => p.endsWith('.js')).map(p => p.split('/').pop())"""


def test_screens_load_only_their_own_code(sign_in):
    page = sign_in("sales_manager", next="/tiers")
    page.get_by_test_id("tiers-table").wait_for()
    loaded = page.evaluate(SCRIPTS)
    assert any(f.startswith("tiers-") for f in loaded), loaded
    # Chart.js and the other screens stay on the server until a screen needs them
    assert not [f for f in loaded if f.startswith(("chart-engine-", "analytics-", "experiments-", "quotes-"))], loaded

    # Moving on loads the next screen's chunk, with a loading state while it comes.
    held = []
    page.route("**/assets/experiments-*.js", lambda route: held.append(route))
    page.locator("#sidenav").get_by_role("link", name="Experiments").click()
    loading = page.get_by_test_id("screen-loading")
    loading.wait_for()
    assert "Loading Experiments" in loading.inner_text()
    page.wait_for_timeout(100)  # the held request has reached the route handler
    assert held, "the experiments chunk was requested"
    held[0].continue_()
    page.get_by_test_id("experiments-table").wait_for()
    assert page.get_by_test_id("screen-loading").count() == 0
    loaded = page.evaluate(SCRIPTS)
    assert not [f for f in loaded if f.startswith("chart-engine-")], "the experiment list draws no chart"
    page.unroute("**/assets/experiments-*.js")
    page.locator("#sidenav").get_by_role("link", name="Analytics").click()
    page.get_by_test_id("revenue-chart").locator("canvas").wait_for()
    loaded = page.evaluate(SCRIPTS)
    assert any(f.startswith("chart-engine-") for f in loaded), "the charting screen brings Chart.js"

    # A chunk that cannot be fetched (a new deploy renamed it) offers a reload.
    page.route("**/assets/quotes-*.js", lambda route: route.abort())
    page.locator("#sidenav").get_by_role("link", name="Quotes").click()
    page.get_by_test_id("screen-load-failed").wait_for()
    page.unroute("**/assets/quotes-*.js")
    page.get_by_role("button", name="Reload the page").click()
    page.get_by_test_id("quotes-table").wait_for()
