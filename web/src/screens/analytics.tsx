import { useState } from "preact/hooks";
import { downloadCsv, type Schemas } from "../api/client";
import { currentSession } from "../auth";
import { ChartView, PALETTE, preloadCharts } from "../chart";
import { checkRange, formatCount, formatMoney, formatMonth, formatPercent, lastMonths, type MonthRange } from "../format";
import { Card, ErrorBanner, Field, Loading, Section, useAction, useAsync } from "../ui";
import { loadCohorts, loadMovements, loadSummary, openingRange, type Summary } from "./analytics-calls";

/** The API's rates are percentages (12.5 = 12.5 %), null when undefined (no base). */
function pct(rate: number | null | undefined): string {
  return formatPercent(rate);
}

function Summary({ s }: { s: Summary }) {
  const redacted = s.totalMRR === undefined;
  const metrics = s.metrics ?? [];
  const ltv = metrics.length ? metrics.map((m) => m.lifetimeValue).filter((v): v is number => v !== undefined) : [];
  const arpu = s.payingCustomers && s.totalMRR !== undefined ? Math.round(s.totalMRR / s.payingCustomers) : undefined;
  const growth = metrics.reduce((acc, m) => acc + (m.netChange ?? 0), 0);
  return (
    <>
      {redacted && (
        <div class="banner info" data-testid="revenue-redacted">
          Revenue figures are not shown for your role (they need the view_revenue_metrics permission).
        </div>
      )}
      <div class="cards">
        <Card testid="card-mrr" title="MRR" value={formatMoney(s.totalMRR, "usd", { whole: true })} />
        <Card testid="card-arr" title="ARR" value={formatMoney(s.totalARR, "usd", { whole: true })} />
        <Card testid="card-arpu" title="ARPU" value={formatMoney(arpu, "usd")} sub="MRR per paying customer" />
        <Card testid="card-churn" title="Churn" value={pct(s.averageChurnRate)} sub="average monthly, customers" />
        <Card
          testid="card-ltv"
          title="LTV"
          value={ltv.length ? formatMoney(Math.max(...ltv), "usd", { whole: true }) : "—"}
          sub="highest tier lifetime value"
        />
        <Card
          testid="card-growth"
          title="Growth"
          value={`${growth >= 0 ? "+" : ""}${formatCount(growth)}`}
          sub="net subscriptions this month"
        />
        <Card testid="card-active" title="Active subscriptions" value={formatCount(s.totalActiveSubscriptions)} />
        <Card testid="card-paying" title="Paying customers" value={formatCount(s.payingCustomers)} />
      </div>
    </>
  );
}

function TierTable({ s }: { s: Summary }) {
  const metrics = s.metrics ?? [];
  return (
    <div class="table-wrap">
      <table data-testid="tier-metrics">
        <thead>
          <tr>
            <th>Tier</th>
            <th class="num">Active</th>
            <th class="num">Paying</th>
            <th class="num">New</th>
            <th class="num">Cancelled</th>
            <th class="num">MRR</th>
            <th class="num">ARPU</th>
            <th class="num">Churn</th>
            <th class="num">Conversion</th>
          </tr>
        </thead>
        <tbody>
          {metrics.map((m) => (
            <tr key={m.tierId}>
              <td>{m.name ?? m.tierId}</td>
              <td class="num">{formatCount(m.activeSubscriptions)}</td>
              <td class="num">{formatCount(m.payingCustomers)}</td>
              <td class="num">{formatCount(m.newSubscriptionsThisMonth)}</td>
              <td class="num">{formatCount(m.cancellationsThisMonth)}</td>
              <td class="num">{formatMoney(m.mrr, "usd", { whole: true })}</td>
              <td class="num">{formatMoney(m.arpu, "usd")}</td>
              <td class="num">{pct(m.customerChurnRate)}</td>
              <td class="num">{pct(m.conversionRate)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Month-end MRR by tier over the summary's twelve-month trends (cents → dollars on the axis). */
function RevenueChart({ s }: { s: Summary }) {
  const metrics = (s.metrics ?? []).filter((m) => (m.monthlyTrends ?? []).some((t) => (t.revenue ?? 0) > 0));
  const months = metrics[0]?.monthlyTrends?.map((t) => t.month ?? "") ?? [];
  if (!metrics.length) return <p class="muted">No revenue in these months.</p>;
  return (
    <ChartView
      testid="revenue-chart"
      label="Monthly revenue by tier"
      config={{
        type: "bar",
        data: {
          labels: months.map(formatMonth),
          datasets: metrics.map((m, i) => ({
            label: m.name ?? m.tierId ?? "",
            data: (m.monthlyTrends ?? []).map((t) => (t.revenue ?? 0) / 100),
            backgroundColor: PALETTE[i % PALETTE.length],
            stack: "mrr",
          })),
        },
        options: {
          scales: { x: { stacked: true }, y: { stacked: true, ticks: { callback: (v) => `$${Number(v).toLocaleString()}` } } },
        },
      }}
    />
  );
}

function Funnel({ f }: { f: Schemas["ConversionFunnel"] | undefined }) {
  if (!f) return null;
  const steps: [string, number | undefined][] = [
    ["Free", f.freeUsers],
    ["Trial", f.trialUsers],
    ["Paid", f.paidUsers],
  ];
  return (
    <>
      <ChartView
        testid="funnel-chart"
        label="Conversion funnel"
        config={{
          type: "bar",
          data: {
            labels: steps.map(([l]) => l),
            datasets: [{ label: "Users", data: steps.map(([, v]) => v ?? 0), backgroundColor: [PALETTE[4], PALETTE[2], PALETTE[1]] }],
          },
          options: { indexAxis: "y", plugins: { legend: { display: false } } },
        }}
      />
      <dl class="props">
        <dt>Free → trial</dt>
        <dd>{pct(f.freeToTrial)}</dd>
        <dt>Trial → paid</dt>
        <dd>{pct(f.trialToPaid)}</dd>
        <dt>Free → paid directly</dt>
        <dd>{pct(f.freeToDirectPaid)}</dd>
      </dl>
    </>
  );
}

/** One metric's adoption on a tier (docs/analytics.md "Usage"). */
type FeatureUse = { featureId?: string; name?: string; usersUsingFeature?: number; usagePercentage?: number | null; avgUsagePerUser?: number };

function FeatureAdoption({ s }: { s: Summary }) {
  const rows = (s.metrics ?? []).flatMap((m) =>
    ((m.featureUsage ?? []) as unknown as FeatureUse[]).map(
      (u) => ({ tier: m.name ?? m.tierId, ...u }),
    ),
  );
  if (!rows.length) return <p class="muted">No feature usage recorded yet.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Tier</th>
            <th>Feature</th>
            <th class="num">Users</th>
            <th class="num">Adoption</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td>{r.tier}</td>
              <td>{r.name ?? r.featureId}</td>
              <td class="num">{formatCount(r.usersUsingFeature)}</td>
              <td class="num">{pct(r.usagePercentage)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Movements({ m }: { m: Schemas["MovementsReport"] }) {
  const months = m.months ?? [];
  return (
    <>
      <ChartView
        testid="movements-chart"
        label="MRR movements by month"
        config={{
          type: "bar",
          data: {
            labels: months.map((x) => formatMonth(x.month ?? "")),
            datasets: [
              { label: "New", data: months.map((x) => (x.new ?? 0) / 100), backgroundColor: PALETTE[1], stack: "m" },
              { label: "Expansion", data: months.map((x) => (x.expansion ?? 0) / 100), backgroundColor: PALETTE[0], stack: "m" },
              { label: "Reactivation", data: months.map((x) => (x.reactivation ?? 0) / 100), backgroundColor: PALETTE[5], stack: "m" },
              { label: "Contraction", data: months.map((x) => -(x.contraction ?? 0) / 100), backgroundColor: PALETTE[2], stack: "m" },
              { label: "Churn", data: months.map((x) => -(x.churn ?? 0) / 100), backgroundColor: PALETTE[6], stack: "m" },
            ],
          },
          options: { scales: { x: { stacked: true }, y: { stacked: true } } },
        }}
      />
      <div class="table-wrap">
        <table data-testid="movements-table">
          <thead>
            <tr>
              <th>Month</th>
              <th class="num">Opening</th>
              <th class="num">New</th>
              <th class="num">Expansion</th>
              <th class="num">Contraction</th>
              <th class="num">Churn</th>
              <th class="num">Net new</th>
              <th class="num">Closing</th>
            </tr>
          </thead>
          <tbody>
            {months.map((x) => (
              <tr key={x.month}>
                <td>{formatMonth(x.month ?? "")}</td>
                <td class="num">{formatMoney(x.openingMrr, "usd", { whole: true })}</td>
                <td class="num">{formatMoney(x.new, "usd", { whole: true })}</td>
                <td class="num">{formatMoney(x.expansion, "usd", { whole: true })}</td>
                <td class="num">{formatMoney(x.contraction, "usd", { whole: true })}</td>
                <td class="num">{formatMoney(x.churn, "usd", { whole: true })}</td>
                <td class="num">{formatMoney(x.netNewMrr, "usd", { whole: true })}</td>
                <td class="num">{formatMoney(x.closingMrr, "usd", { whole: true })}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

type CohortMonth = { month?: string; offset?: number; activePartners?: number; partnerRetention?: number | null };

/** Signup cohorts as a heat map: one row per cohort, one cell per month since signup. */
function Cohorts({ c }: { c: Schemas["CohortsReport"] }) {
  const cohorts = c.cohorts ?? [];
  const width = Math.max(0, ...cohorts.map((x) => (x.months ?? []).length));
  if (!cohorts.length) return <p class="muted">No signups in these months.</p>;
  return (
    <div class="table-wrap">
      <table class="heat" data-testid="cohorts-heatmap">
        <thead>
          <tr>
            <th>Cohort</th>
            <th class="num">Signups</th>
            {Array.from({ length: width }, (_, i) => (
              <th key={i}>M{i}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {cohorts.map((row) => (
            <tr key={row.cohort}>
              <td>{formatMonth(row.cohort ?? "")}</td>
              <td class="num">{formatCount(row.signups)}</td>
              {Array.from({ length: width }, (_, i) => {
                const cell = (row.months ?? [])[i] as CohortMonth | undefined;
                const rate = cell ? retentionOf(cell) : null;
                return (
                  <td
                    key={i}
                    style={rate === null ? undefined : { background: `rgba(39,84,197,${0.08 + 0.8 * rate})`, color: rate > 0.55 ? "#fff" : undefined }}
                    title={cell ? `${cell.month}: ${formatCount(cell.activePartners)} active` : undefined}
                  >
                    {rate === null ? "" : `${Math.round(rate * 100)}%`}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** partnerRetention (percent of the cohort's signups still active) as a 0–1 share. */
function retentionOf(cell: CohortMonth): number | null {
  return typeof cell.partnerRetention === "number" ? cell.partnerRetention / 100 : null;
}

function RangePicker({ range, onChange }: { range: MonthRange; onChange: (r: MonthRange) => void }) {
  const [from, setFrom] = useState(range.from);
  const [to, setTo] = useState(range.to);
  const checked = checkRange(from, to, new Date());
  const problem = "problem" in checked ? checked : null;
  return (
    <form
      class="filters"
      onSubmit={(e) => {
        e.preventDefault();
        if (!problem) onChange(checked as MonthRange);
      }}
    >
      {[3, 6, 12].map((n) => (
        <button
          key={n}
          type="button"
          class="secondary small"
          onClick={() => {
            const r = lastMonths(n, new Date());
            setFrom(r.from);
            setTo(r.to);
            onChange(r);
          }}
        >
          Last {n} months
        </button>
      ))}
      <Field label="From" name="from" error={problem?.field === "from" ? problem.problem : undefined}>
        {(id, d) => <input id={id} type="month" value={from} aria-describedby={d} onInput={(e) => setFrom(e.currentTarget.value)} />}
      </Field>
      <Field label="To" name="to" error={problem?.field === "to" ? problem.problem : undefined}>
        {(id, d) => <input id={id} type="month" value={to} aria-describedby={d} onInput={(e) => setTo(e.currentTarget.value)} />}
      </Field>
      <button type="submit" disabled={!!problem}>
        Apply
      </button>
    </form>
  );
}

// Every view of this screen charts: fetch Chart.js beside the data, not after it.
preloadCharts().catch(() => undefined);

export function AnalyticsScreen() {
  const [range, setRange] = useState<MonthRange>(() => openingRange(new Date()));
  // The first render claims the calls main.tsx started early (analytics-calls.ts).
  const summary = useAsync(loadSummary, []);
  const movements = useAsync(() => loadMovements(range), [range.from, range.to]);
  const cohorts = useAsync(() => loadCohorts(range), [range.from, range.to]);
  const csv = useAction(async (path: string, name: string) => downloadCsv(path, name));
  const canSeeRevenue = currentSession()?.role !== "sales_rep";
  const q = `from=${range.from}&to=${range.to}`;
  return (
    <>
      <div class="page-head">
        <h1>Analytics</h1>
        <div class="actions" aria-label="CSV exports">
          <button type="button" class="secondary small" disabled={csv.busy} onClick={() => csv.go("/api/admin/tiers/analytics", "tier-analytics.csv")}>
            Summary CSV
          </button>
          {canSeeRevenue && (
            <button type="button" class="secondary small" disabled={csv.busy} onClick={() => csv.go(`/api/admin/analytics/movements?${q}`, "mrr-movements.csv")}>
              Movements CSV
            </button>
          )}
          <button type="button" class="secondary small" disabled={csv.busy} onClick={() => csv.go(`/api/admin/analytics/cohorts?${q}`, "cohorts.csv")}>
            Cohorts CSV
          </button>
        </div>
      </div>
      <ErrorBanner error={csv.error} />
      <ErrorBanner error={summary.error} />
      {summary.data ? <Summary s={summary.data} /> : summary.loading && <Loading what="Loading the summary" />}
      {summary.data && (
        <>
          <div class={summary.data.totalMRR === undefined ? "" : "grid2"}>
            {summary.data.totalMRR !== undefined && (
              <Section title="Revenue by tier (month-end MRR)" id="h-revenue">
                <RevenueChart s={summary.data} />
              </Section>
            )}
            <Section title="Conversion funnel" id="h-funnel">
              <Funnel f={summary.data.conversionFunnel} />
            </Section>
          </div>
          <Section title="Tiers this month" id="h-tiers">
            <TierTable s={summary.data} />
          </Section>
          <Section title="Feature adoption" id="h-features">
            <FeatureAdoption s={summary.data} />
          </Section>
        </>
      )}
      <Section title="Date range" id="h-range">
        <RangePicker range={range} onChange={setRange} />
      </Section>
      <Section title="MRR movements" id="h-movements">
        <ErrorBanner error={movements.error} />
        {movements.data === null ? (
          <p class="muted">Not shown for your role.</p>
        ) : movements.data ? (
          <Movements m={movements.data} />
        ) : (
          <Loading />
        )}
      </Section>
      <Section title="Signup cohorts (share still subscribed)" id="h-cohorts">
        <ErrorBanner error={cohorts.error} />
        {cohorts.data ? <Cohorts c={cohorts.data} /> : <Loading />}
      </Section>
    </>
  );
}
