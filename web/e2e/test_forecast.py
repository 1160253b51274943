"""Forecast: the seeded history's forecast with its interval and accuracy, a what-if
scenario against the API's own answer, the elasticity from the seeded price test,
and a recommendation accepted as a draft experiment."""

from conftest import api, dev_token, shoot


def money(cents: int) -> str:
    """The console's whole-dollar format."""
    return f"${round(cents / 100):,}"


def test_forecast_scenario_elasticity_and_recommendation(sign_in):
    manager = dev_token("sales_manager")
    status, forecast = api("GET", "/api/admin/analytics/forecast?horizon=12", manager)
    assert status == 200, forecast
    page = sign_in("sales_manager", next="/forecast")
    page.get_by_test_id("forecast-chart").locator("canvas").wait_for()
    assert page.get_by_test_id("card-baseline").inner_text().count(money(forecast["baselineRevenue"])) == 1
    assert money(forecast["forecastedRevenue"]) in page.get_by_test_id("card-forecast").inner_text()
    # The seeded 30 months are enough for every model step: the seasonal one is
    # tried, the backtest measured.
    model = page.get_by_test_id("model").inner_text()
    assert "seasonality strength" in model and "of the backtest" in model, model
    series = page.get_by_test_id("series-table")
    assert series.locator("tr[data-series=gold]").count() == 1
    assert "no revenue" in series.locator("tr[data-series=free]").inner_text()
    shoot(page, "forecast")

    # A what-if: gold +10%. The table shows the API's own figures.
    form = page.get_by_test_id("scenario-form")
    form.get_by_label("Tier").select_option("gold")
    form.get_by_label("Price change (%)").fill("10")
    form.get_by_role("button", name="Compare with the baseline").click()
    row = page.get_by_test_id("scenario-table").locator("tbody tr").first
    row.wait_for()
    status, answer = api("POST", "/api/admin/analytics/forecast/scenarios", manager, {
        "horizon": 12, "scenarios": [{"name": "x", "tierId": "gold", "priceChangePercent": 10}],
    })
    assert status == 200, answer
    assert money(answer["scenarios"][0]["forecastedRevenue"]) in row.inner_text()
    assert "elasticity" in row.inner_text()
    # A value out of range names its field beside it.
    form.get_by_label("Price change (%)").fill("500")
    form.get_by_role("button", name="Compare with the baseline").click()
    form.locator("[data-field=priceChangePercent] .field-error").wait_for()

    # The seeded gold price test gives gold an elasticity, below −1 with confidence.
    elasticity = page.get_by_test_id("elasticity-table").locator("tr[data-tier=gold]")
    assert "experiment" in elasticity.inner_text()

    # Its recommendation: accept it (with the confirmation step) as a draft experiment.
    card = page.get_by_test_id("recommendation").first
    assert card.get_attribute("data-status") == "open"
    assert "$3,240.00" in card.inner_text()
    card.get_by_role("button", name="Accept as a draft experiment").click()
    shoot(page, "forecast-recommendation-confirm")
    card.get_by_role("button", name="Yes, accept").click()
    accepted = page.locator("[data-testid=recommendation][data-status=accepted]")
    accepted.wait_for()
    accepted.get_by_role("link").click()
    page.get_by_test_id("experiment-summary").get_by_text("draft").wait_for()
    shoot(page, "forecast-draft-experiment")


def test_kpis_and_alerts_are_shown_as_the_api_gives_them(sign_in):
    manager = dev_token("sales_manager")
    status, kpis = api("GET", "/api/admin/analytics/kpis", manager)
    assert status == 200, kpis
    page = sign_in("admin", next="/forecast")
    cards = page.get_by_test_id("kpis")
    cards.wait_for()
    assert "payment success" in cards.inner_text().lower()
    assert "marketing spend" in page.get_by_text("Needs figures Tierdesk does not hold").inner_text()
    status, alerts = api("GET", "/api/admin/alerts", manager)
    assert status == 200, alerts
    rows = page.get_by_test_id("alerts-table").locator("tbody tr")
    rows.first.wait_for()
    assert rows.count() == max(len(alerts["alerts"]), 1)
    page.get_by_test_id("alerts-table").scroll_into_view_if_needed()
    shoot(page, "forecast-kpis-alerts")


def test_reps_are_not_offered_the_forecast(sign_in):
    page = sign_in("sales_rep")
    page.get_by_role("navigation").get_by_role("link", name="Analytics").wait_for()
    assert page.get_by_role("navigation").get_by_role("link", name="Forecast").count() == 0
    status, _ = api("GET", "/api/admin/analytics/forecast", dev_token("sales_rep"))
    assert status == 403
