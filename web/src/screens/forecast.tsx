// The Forecast screen (docs/intelligence.md): the stored revenue forecast with its
// interval, accuracy and seasonality, what-if scenarios, each tier's price
// elasticity, and the pricing recommendations staff accept (a draft experiment)
// or dismiss. Everything shown is the API's; the screen computes nothing but sums
// for display.
import { useEffect, useState } from "preact/hooks";
import { api, ok, type Schemas } from "../api/client";
import { ChartView, PALETTE, preloadCharts } from "../chart";
import { formatDateTime, formatMoney, formatMonth, formatPercent } from "../format";
import { Badge, Card, ErrorBanner, Field, fieldError, Link, Loading, Section, useAction, useAsync } from "../ui";

type Forecast = Schemas["RevenueForecast"];
type Series = Schemas["SeriesForecast"];
type Recommendation = Schemas["Recommendation"];
type ScenarioResult = Schemas["ScenarioForecast"];

const HORIZONS = [3, 6, 12, 24];
/** History months drawn before the forecast. */
const HISTORY_SHOWN = 24;

export function ForecastScreen() {
  preloadCharts().catch(() => undefined);
  const [horizon, setHorizon] = useState(12);
  const [tier, setTier] = useState("");
  const forecast = useAsync(
    () =>
      ok(
        api.GET("/api/admin/analytics/forecast", {
          params: { query: { horizon, ...(tier ? { tier } : {}) } },
        }),
      ),
    [horizon, tier],
  );
  const [scenarios, setScenarios] = useState<ScenarioResult[]>([]);
  // The tiers to choose from: the whole forecast's, kept while one tier is shown
  // (its answer names that tier only).
  const [tierIds, setTierIds] = useState<string[]>([]);
  useEffect(() => {
    if (forecast.data && !tier) setTierIds(forecast.data.drivers.map((d) => d.tierId));
  }, [forecast.data, tier]);
  const notReady = forecast.error && typeof forecast.error === "object" && "status" in forecast.error && forecast.error.status === 404;
  return (
    <>
      <div class="page-head">
        <h1>Forecast</h1>
      </div>
      <div class="filters">
        <Field label="Horizon" name="horizon">
          {(id) => (
            <select id={id} data-testid="horizon" value={horizon} onChange={(e) => setHorizon(Number(e.currentTarget.value))}>
              {HORIZONS.map((h) => (
                <option key={h} value={h}>
                  {h} months
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Series" name="series">
          {(id) => (
            <select id={id} data-testid="series" value={tier} onChange={(e) => setTier(e.currentTarget.value)}>
              <option value="">All tiers</option>
              {tierIds.map((id) => (
                <option key={id} value={id}>
                  {id}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      {notReady ? (
        <div class="banner info" data-testid="forecast-not-ready">
          No forecast yet: the daily job makes the first one (locally, run the cron from the dev gateway).
        </div>
      ) : (
        <ErrorBanner error={forecast.error} />
      )}
      {forecast.data ? <ForecastBody f={forecast.data} scenarios={scenarios} /> : !forecast.error && <Loading />}
      {forecast.data && <Scenarios f={forecast.data} horizon={horizon} onResult={setScenarios} />}
      <Elasticity />
      <Recommendations />
      <Kpis />
      <Alerts />
    </>
  );
}

function headline(f: Forecast): Series | undefined {
  return f.total ?? f.tiers[0];
}

function ForecastBody({ f, scenarios }: { f: Forecast; scenarios: ScenarioResult[] }) {
  const s = headline(f);
  const acc = f.accuracy;
  const level = Math.round((f.confidenceInterval.level ?? 0.8) * 100);
  return (
    <>
      <div class="cards">
        <Card testid="card-baseline" title="MRR now" value={formatMoney(f.baselineRevenue, "usd", { whole: true })} sub="last complete month" />
        <Card
          testid="card-forecast"
          title={`MRR in ${f.timeHorizon.to ? formatMonth(f.timeHorizon.to) : "—"}`}
          value={formatMoney(f.forecastedRevenue, "usd", { whole: true })}
          sub={`${level}% interval ${formatMoney(f.confidenceInterval.lower, "usd", { whole: true })} – ${formatMoney(f.confidenceInterval.upper, "usd", { whole: true })}`}
        />
        <Card
          testid="card-horizon-revenue"
          title={`Revenue, next ${f.timeHorizon.months} months`}
          value={formatMoney(f.horizonRevenue?.value, "usd", { whole: true })}
          sub={`${formatMoney(f.horizonRevenue?.lower, "usd", { whole: true })} – ${formatMoney(f.horizonRevenue?.upper, "usd", { whole: true })}`}
        />
        <Card
          testid="card-accuracy"
          title="Backtest error (MAPE)"
          value={acc?.mape !== null && acc?.mape !== undefined ? `${formatPercent(acc.mape)}` : "—"}
          sub={acc ? `MASE ${acc.mase ?? "—"} · ${Math.round(acc.intervalCoverage * 100)}% in the model's interval` : "not enough history to backtest"}
        />
      </div>
      <Section title={s ? `${s.name}: history and forecast` : "Forecast"}>
        {s && s.points.length > 0 ? (
          <ForecastChart s={s} level={level} scenarios={f.total ? scenarios : []} />
        ) : (
          <p class="muted">No forecast line for this series: see the data notes below.</p>
        )}
        {s?.model && (
          <p class="muted" data-testid="model">
            Model: {s.model}
            {s.seasonality && (
              <>
                {" "}
                · seasonality strength {s.seasonality.strength.toFixed(2)}
                {s.seasonality.used ? " (used)" : " (not used: plain ETS did better in the backtest)"}
              </>
            )}
            {acc &&
              (acc.calibrationFactor > 1 ? (
                <> · interval widened ×{acc.calibrationFactor} to hold {level}% of the backtest</>
              ) : (
                <> · the model's own interval held {level}% of the backtest</>
              ))}
          </p>
        )}
      </Section>
      <Section title="Every series">
        <div class="table-wrap">
          <table data-testid="series-table">
            <thead>
              <tr>
                <th>Series</th>
                <th>Model</th>
                <th class="num">MRR now</th>
                <th class="num">Forecast</th>
                <th class="num">MAPE</th>
                <th>Data notes</th>
              </tr>
            </thead>
            <tbody>
              {[...(f.total ? [f.total] : []), ...f.tiers].map((x) => (
                <tr key={x.seriesId} data-series={x.seriesId}>
                  <td>{x.name}</td>
                  <td>{x.model ?? "—"}</td>
                  <td class="num">{formatMoney(x.history[x.history.length - 1]?.value, "usd", { whole: true })}</td>
                  <td class="num">{formatMoney(x.points[x.points.length - 1]?.value, "usd", { whole: true })}</td>
                  <td class="num">{x.accuracy?.mape !== null && x.accuracy?.mape !== undefined ? formatPercent(x.accuracy.mape) : "—"}</td>
                  <td>{x.dataQualityIssues.map((i) => i.message).join("; ") || "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <details>
          <summary>Assumptions</summary>
          <ul>
            {f.assumptions.map((a) => (
              <li key={a}>{a}</li>
            ))}
          </ul>
        </details>
      </Section>
    </>
  );
}

function ForecastChart({ s, level, scenarios }: { s: Series; level: number; scenarios: ScenarioResult[] }) {
  const history = s.history.slice(-HISTORY_SHOWN);
  const months = [...history.map((p) => p.month), ...s.points.map((p) => p.month)];
  const pad = (n: number) => Array<number | null>(n).fill(null);
  const dollars = (v: number) => v / 100;
  // The forecast line starts at the last actual month so the two lines join.
  const last = history.at(-1);
  const joint = last ? [dollars(last.value)] : [];
  const lead = pad(Math.max(history.length - 1, 0));
  return (
    <ChartView
      testid="forecast-chart"
      label={`${s.name}: month-end MRR, actual and forecast with the ${level}% interval`}
      config={{
        type: "line",
        data: {
          labels: months.map(formatMonth),
          datasets: [
            { label: "Actual MRR", data: [...history.map((p) => dollars(p.value)), ...pad(s.points.length)], borderColor: PALETTE[0], backgroundColor: PALETTE[0], pointRadius: 2 },
            { label: "Forecast", data: [...lead, ...joint, ...s.points.map((p) => dollars(p.value))], borderColor: PALETTE[1], backgroundColor: PALETTE[1], borderDash: [6, 4], pointRadius: 2 },
            { label: `${level}% interval (low)`, data: [...lead, ...joint, ...s.points.map((p) => dollars(p.lower))], borderColor: "rgba(29,154,108,0.25)", backgroundColor: "rgba(29,154,108,0.12)", pointRadius: 0, fill: false },
            { label: `${level}% interval (high)`, data: [...lead, ...joint, ...s.points.map((p) => dollars(p.upper))], borderColor: "rgba(29,154,108,0.25)", backgroundColor: "rgba(29,154,108,0.12)", pointRadius: 0, fill: "-1" },
            ...scenarios.map((sc, i) => ({
              label: sc.name,
              data: [...lead, ...joint, ...sc.points.map((p) => dollars(p.value))],
              borderColor: PALETTE[(i + 2) % PALETTE.length],
              backgroundColor: PALETTE[(i + 2) % PALETTE.length],
              pointRadius: 1,
            })),
          ],
        },
        options: {
          scales: { y: { ticks: { callback: (v) => `$${Number(v).toLocaleString()}` } } },
          plugins: { legend: { labels: { filter: (item) => !String(item.text).includes("interval (low)") } } },
        },
      }}
    />
  );
}

function Scenarios({ f, horizon, onResult }: { f: Forecast; horizon: number; onResult: (r: ScenarioResult[]) => void }) {
  const [tierId, setTierId] = useState("");
  const [price, setPrice] = useState("");
  const [churn, setChurn] = useState("");
  const [conversion, setConversion] = useState("");
  const [results, setResults] = useState<ScenarioResult[]>([]);
  const num = (v: string) => (v.trim() === "" ? undefined : Number(v));
  const run = useAction(async () => {
    const parts = [
      price && `price ${Number(price) > 0 ? "+" : ""}${price}%`,
      churn && `churn ${Number(churn) > 0 ? "+" : ""}${churn} pts`,
      conversion && `conversion ${Number(conversion) > 0 ? "+" : ""}${conversion}%`,
    ].filter(Boolean);
    const name = `${tierId || "All tiers"}: ${parts.join(", ") || "no change"}`;
    const out = await ok(
      api.POST("/api/admin/analytics/forecast/scenarios", {
        body: {
          horizon,
          scenarios: [
            {
              name,
              ...(tierId ? { tierId } : {}),
              priceChangePercent: num(price),
              churnChangePoints: num(churn),
              conversionChangePercent: num(conversion),
            },
          ],
        },
      }),
    );
    const next = [...results, ...out.scenarios].slice(-4);
    setResults(next);
    onResult(next);
  });
  const err = (name: string) => fieldError(run.error, `scenarios[0].${name}`);
  return (
    <Section title="What if" actions={results.length > 0 && <button type="button" class="secondary small" onClick={() => { setResults([]); onResult([]); }}>Clear</button>}>
      <form
        class="form-grid"
        data-testid="scenario-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run.go();
        }}
      >
        <Field label="Tier" name="tierId" error={err("tierId")}>
          {(id) => (
            <select id={id} value={tierId} onChange={(e) => setTierId(e.currentTarget.value)}>
              <option value="">All tiers</option>
              {f.drivers.map((d) => (
                <option key={d.tierId} value={d.tierId}>
                  {d.tierId}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Price change (%)" name="priceChangePercent" error={err("priceChangePercent")}>
          {(id) => <input id={id} inputMode="decimal" value={price} onInput={(e) => setPrice(e.currentTarget.value)} />}
        </Field>
        <Field label="Churn change (points)" name="churnChangePoints" error={err("churnChangePoints")}>
          {(id) => <input id={id} inputMode="decimal" value={churn} onInput={(e) => setChurn(e.currentTarget.value)} />}
        </Field>
        <Field label="Conversion change (%)" name="conversionChangePercent" error={err("conversionChangePercent")}>
          {(id) => <input id={id} inputMode="decimal" value={conversion} onInput={(e) => setConversion(e.currentTarget.value)} />}
        </Field>
        <div class="form-actions">
          <button type="submit" disabled={run.busy}>
            Compare with the baseline
          </button>
        </div>
      </form>
      <ErrorBanner error={run.error} shownFields={["scenarios[0].tierId", "scenarios[0].priceChangePercent", "scenarios[0].churnChangePoints", "scenarios[0].conversionChangePercent"]} />
      {results.length > 0 && (
        <div class="table-wrap">
          <table data-testid="scenario-table">
            <thead>
              <tr>
                <th>Scenario</th>
                <th class="num">MRR at the horizon</th>
                <th class="num">Change</th>
                <th class="num">Revenue over the horizon</th>
                <th>Assumptions</th>
              </tr>
            </thead>
            <tbody>
              {results.map((r, i) => (
                <tr key={`${r.name}-${i}`}>
                  <td>{r.name}</td>
                  <td class="num">{formatMoney(r.forecastedRevenue, "usd", { whole: true })}</td>
                  <td class="num">{formatMoney(r.changeFromBaseline, "usd", { whole: true })}</td>
                  <td class="num">{formatMoney(r.horizonRevenue.value, "usd", { whole: true })}</td>
                  <td>
                    <ul>
                      {r.assumptions.map((a) => (
                        <li key={a}>{a}</li>
                      ))}
                    </ul>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}

function Elasticity() {
  const report = useAsync(() => ok(api.GET("/api/admin/analytics/elasticity")), []);
  if (report.error && typeof report.error === "object" && "status" in report.error && report.error.status === 404) return null;
  return (
    <Section title="Price elasticity">
      <ErrorBanner error={report.error} />
      {report.data ? (
        <div class="table-wrap">
          <table data-testid="elasticity-table">
            <thead>
              <tr>
                <th>Tier</th>
                <th class="num">Elasticity</th>
                <th class="num">95% interval</th>
                <th>Method</th>
                <th>Evidence</th>
              </tr>
            </thead>
            <tbody>
              {report.data.estimates.map((e) => (
                <tr key={e.tierId} data-tier={e.tierId}>
                  <td>{e.tierId}</td>
                  <td class="num">{e.elasticity.toFixed(2)}</td>
                  <td class="num">
                    {e.confidenceInterval.lower.toFixed(2)} to {e.confidenceInterval.upper.toFixed(2)}
                  </td>
                  <td>{e.method}</td>
                  <td>{e.evidence.map((x) => x.description).join("; ")}</td>
                </tr>
              ))}
              {report.data.withoutEstimate.map((t) => (
                <tr key={t.tierId} class="muted">
                  <td>{t.tierId}</td>
                  <td class="num">—</td>
                  <td class="num">—</td>
                  <td colSpan={2}>No estimate: {t.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        !report.error && <Loading />
      )}
    </Section>
  );
}

function Kpis() {
  const kpis = useAsync(() => ok(api.GET("/api/admin/analytics/kpis")), []);
  const k = kpis.data;
  const rate = (v: number | null | undefined) => (v === null || v === undefined ? "—" : formatPercent(v));
  return (
    <Section title={k ? `Success metrics, ${formatMonth(k.month)}` : "Success metrics"}>
      <ErrorBanner error={kpis.error} />
      {k ? (
        <>
          <div class="cards" data-testid="kpis">
            <Card title="Payment success" value={rate(k.paymentSuccessRate)} sub={`${k.paymentsSucceeded} paid, ${k.paymentFailures} failed attempts`} />
            <Card title="Trial conversion" value={rate(k.trialConversionRate)} />
            <Card title="Expansion" value={rate(k.expansionRate)} sub="of MRR at the month's start" />
            <Card title="Net revenue retention" value={rate(k.netRevenueRetention)} sub="monthly" />
            <Card
              title="Days to first payment"
              value={k.averageDaysToFirstPayment === null || k.averageDaysToFirstPayment === undefined ? "—" : k.averageDaysToFirstPayment.toFixed(1)}
              sub="mean, from signup"
            />
          </div>
          <p class="muted">Needs figures Tierdesk does not hold: {k.needsInput.join("; ")}.</p>
        </>
      ) : (
        !kpis.error && <Loading />
      )}
    </Section>
  );
}

function Alerts() {
  const alerts = useAsync(() => ok(api.GET("/api/admin/alerts")), []);
  return (
    <Section title="Staff alerts">
      <ErrorBanner error={alerts.error} />
      {alerts.data ? (
        <div class="table-wrap">
          <table data-testid="alerts-table">
            <thead>
              <tr>
                <th>Fired</th>
                <th>Alert</th>
                <th>Window</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {alerts.data.alerts.map((a) => (
                <tr key={a.alertId}>
                  <td>{formatDateTime(a.firedAt)}</td>
                  <td>{a.message}</td>
                  <td>{a.window}</td>
                  <td>
                    <Badge value={a.state} />
                  </td>
                </tr>
              ))}
              {alerts.data.alerts.length === 0 && (
                <tr>
                  <td colSpan={4} class="muted">
                    No alert has fired. Rules: GET /api/admin/alert-rules.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      ) : (
        !alerts.error && <Loading />
      )}
    </Section>
  );
}

function Recommendations() {
  const list = useAsync(() => ok(api.GET("/api/admin/recommendations")), []);
  return (
    <Section title="Pricing recommendations">
      <ErrorBanner error={list.error} />
      {list.data ? (
        list.data.recommendations.length ? (
          list.data.recommendations.map((r) => <RecommendationCard key={r.recommendationId} r={r} onDecided={list.reload} />)
        ) : (
          <p class="muted">No recommendation: no tier's elasticity interval lies wholly on one side of −1.</p>
        )
      ) : (
        !list.error && <Loading />
      )}
    </Section>
  );
}

function RecommendationCard({ r, onDecided }: { r: Recommendation; onDecided: () => void }) {
  const [confirming, setConfirming] = useState<"accept" | "dismiss" | null>(null);
  const decide = useAction(async (what: "accept" | "dismiss") => {
    const path = what === "accept" ? "/api/admin/recommendations/{recommendationId}/accept" : "/api/admin/recommendations/{recommendationId}/dismiss";
    await ok(api.POST(path, { params: { path: { recommendationId: r.recommendationId } } }));
    setConfirming(null);
    onDecided();
  });
  const m = r.expectedImpact.mrr;
  const c = r.expectedImpact.conversions;
  return (
    <article class="card section" data-testid="recommendation" data-status={r.status}>
      <header>
        <strong>
          {r.tierId}: {formatMoney(r.currentPrice, "usd")} → {formatMoney(r.proposedPrice, "usd")} ({r.changePercent > 0 ? "+" : ""}
          {r.changePercent}%)
        </strong>{" "}
        <Badge value={r.status} /> <Badge value={`${r.riskAssessment.level}_risk`} />
      </header>
      <p>{r.description}</p>
      <dl class="props">
        <dt>MRR after {r.expectedImpact.horizonMonths} months</dt>
        <dd>
          {formatMoney(m.value, "usd", { whole: true })} ({formatMoney(m.lower, "usd", { whole: true })} to {formatMoney(m.upper, "usd", { whole: true })})
        </dd>
        <dt>New customers a month</dt>
        <dd>
          {c.value > 0 ? "+" : ""}
          {c.value.toFixed(1)}% ({c.lower.toFixed(1)}% to {c.upper.toFixed(1)}%)
        </dd>
        <dt>Churn</dt>
        <dd>not estimated</dd>
        <dt>Risk</dt>
        <dd>{r.riskAssessment.factors.join("; ")}</dd>
      </dl>
      {r.status === "accepted" && r.experimentId && (
        <p>
          Draft experiment: <Link href={`/experiments/${encodeURIComponent(r.experimentId)}`}>{r.experimentId}</Link>
        </p>
      )}
      {r.status === "open" &&
        (confirming ? (
          <div class="actions" role="group" aria-label="Confirm">
            <span>
              {confirming === "accept"
                ? "Create a draft experiment testing this price? Nothing changes until you start it."
                : "Dismiss this recommendation?"}
            </span>{" "}
            <button type="button" disabled={decide.busy} onClick={() => void decide.go(confirming)}>
              Yes, {confirming}
            </button>{" "}
            <button type="button" class="secondary" onClick={() => setConfirming(null)}>
              Back
            </button>
          </div>
        ) : (
          <div class="actions">
            <button type="button" onClick={() => setConfirming("accept")}>
              Accept as a draft experiment
            </button>{" "}
            <button type="button" class="secondary" onClick={() => setConfirming("dismiss")}>
              Dismiss
            </button>
          </div>
        ))}
      <ErrorBanner error={decide.error} />
    </article>
  );
}
