import { useState } from "preact/hooks";
import { api, ok, type Schemas } from "../api/client";
import { ChartView, PALETTE, preloadCharts } from "../chart";
import { formatCount, formatDate, formatMoney, parseMoney } from "../format";
import { navigate } from "../router";
import { Badge, ErrorBanner, Field, fieldError, Link, Loading, Section, useAction, useAsync } from "../ui";
import { useTiers } from "../shared";

type Experiment = Schemas["Experiment"];
type Results = Schemas["ExperimentResults"];

export function ExperimentsScreen({ sub }: { sub: string }) {
  if (sub === "new") return <ExperimentForm />;
  if (sub) return <ExperimentPage experimentId={decodeURIComponent(sub)} />;
  return <ExperimentList />;
}

function ExperimentList() {
  // The API answers every experiment in one page (no cursor).
  const list = useAsync(() => ok(api.GET("/api/admin/experiments")), []);
  return (
    <>
      <div class="page-head">
        <h1>Experiments</h1>
        <Link href="/experiments/new" class="button">
          New experiment
        </Link>
      </div>
      <ErrorBanner error={list.error} />
      <section class="card section">
        {list.data ? (
          <>
            <div class="table-wrap">
              <table data-testid="experiments-table">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Status</th>
                    <th>Tier</th>
                    <th>Variants (traffic)</th>
                    <th>Started</th>
                    <th>Winner</th>
                  </tr>
                </thead>
                <tbody>
                  {(list.data.items ?? []).map((x) => (
                    <tr key={x.experimentId}>
                      <td>
                        <Link href={`/experiments/${encodeURIComponent(x.experimentId ?? "")}`}>{x.name}</Link>
                      </td>
                      <td>
                        <Badge value={x.status} />
                      </td>
                      <td>{x.targetTier}</td>
                      <td>{(x.variants ?? []).map((v) => `${v.name} ${v.allocation}%`).join(" · ")}</td>
                      <td>{formatDate(x.startDate)}</td>
                      <td>{x.winner ?? "—"}</td>
                    </tr>
                  ))}
                  {(list.data.items ?? []).length === 0 && (
                    <tr>
                      <td colSpan={6} class="muted">
                        No experiments yet.
                      </td>
                    </tr>
                  )}
                </tbody>
              </table>
            </div>
          </>
        ) : (
          <Loading />
        )}
      </section>
    </>
  );
}

interface DraftVariant {
  variantId: string;
  name: string;
  allocation: string;
  monthly: string;
}

function ExperimentForm() {
  const tiers = useTiers();
  const [x, setX] = useState({ name: "", hypothesis: "", targetTier: "", minSampleSize: "100", confidenceLevel: "95" });
  const [variants, setVariants] = useState<DraftVariant[]>([
    { variantId: "control", name: "Control", allocation: "50", monthly: "" },
    { variantId: "b", name: "Variant B", allocation: "50", monthly: "" },
  ]);
  const total = variants.reduce((a, v) => a + (Number(v.allocation) || 0), 0);
  const create = useAction(async () => {
    const tier = tiers.data?.items.find((t) => t.tierId === x.targetTier);
    const created = await ok(
      api.POST("/api/admin/experiments", {
        body: {
          name: x.name,
          hypothesis: x.hypothesis || undefined,
          targetTier: x.targetTier,
          minSampleSize: Number(x.minSampleSize),
          confidenceLevel: Number(x.confidenceLevel) as 95,
          variants: variants.map((v, i) => ({
            variantId: v.variantId,
            name: v.name,
            isControl: i === 0,
            allocation: Number(v.allocation),
            pricing: {
              monthly: v.monthly ? (parseMoney(v.monthly) ?? Number.NaN) : (tier?.prices.monthly ?? 0),
              yearly: tier ? Math.round(((v.monthly ? (parseMoney(v.monthly) ?? 0) : tier.prices.monthly) * tier.prices.yearly) / Math.max(1, tier.prices.monthly)) : 0,
            },
          })),
        },
      }),
    );
    navigate(`/experiments/${encodeURIComponent(created.experimentId ?? "")}`);
  });
  const err = (...n: string[]) => fieldError(create.error, ...n);
  const setV = (i: number, patch: Partial<DraftVariant>) => setVariants(variants.map((v, j) => (i === j ? { ...v, ...patch } : v)));
  return (
    <>
      <div class="page-head">
        <h1>New experiment</h1>
        <Link href="/experiments">← All experiments</Link>
      </div>
      <form
        class="card"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void create.go();
        }}
      >
        <div class="form-grid">
          <Field label="Name" name="name" error={err("name")}>
            {(id, d) => <input id={id} aria-describedby={d} value={x.name} onInput={(e) => setX({ ...x, name: e.currentTarget.value })} />}
          </Field>
          <Field label="Target tier" name="targetTier" error={err("targetTier")}>
            {(id, d) => (
              <select id={id} aria-describedby={d} value={x.targetTier} onChange={(e) => setX({ ...x, targetTier: e.currentTarget.value })}>
                <option value="">Pick a tier</option>
                {tiers.data?.items
                  .filter((t) => t.status === "active" && t.prices.monthly > 0)
                  .map((t) => (
                    <option key={t.tierId} value={t.tierId}>
                      {t.name} ({formatMoney(t.prices.monthly, t.currency)}/mo)
                    </option>
                  ))}
              </select>
            )}
          </Field>
          <Field label="Minimum sample per variant" name="minSampleSize" error={err("minSampleSize")}>
            {(id, d) => <input id={id} type="number" min={1} aria-describedby={d} value={x.minSampleSize} onInput={(e) => setX({ ...x, minSampleSize: e.currentTarget.value })} />}
          </Field>
          <Field label="Confidence level" name="confidenceLevel" error={err("confidenceLevel")}>
            {(id, d) => (
              <select id={id} aria-describedby={d} value={x.confidenceLevel} onChange={(e) => setX({ ...x, confidenceLevel: e.currentTarget.value })}>
                <option value="90">90%</option>
                <option value="95">95%</option>
                <option value="99">99%</option>
              </select>
            )}
          </Field>
        </div>
        <Field label="Hypothesis" name="hypothesis" error={err("hypothesis")}>
          {(id, d) => <textarea id={id} aria-describedby={d} value={x.hypothesis} onInput={(e) => setX({ ...x, hypothesis: e.currentTarget.value })} />}
        </Field>
        <h3>Variants and traffic split</h3>
        {variants.map((v, i) => (
          <div class="form-grid" key={i}>
            <Field label={`Variant ${i + 1} name${i === 0 ? " (control)" : ""}`} name={`variants[${i}].name`} error={err(`variants[${i}].name`)}>
              {(id, d) => <input id={id} aria-describedby={d} value={v.name} onInput={(e) => setV(i, { name: e.currentTarget.value })} />}
            </Field>
            <Field label={`Variant ${i + 1} traffic (%)`} name={`variants[${i}].allocation`} error={err(`variants[${i}].allocation`)}>
              {(id, d) => <input id={id} type="number" min={1} max={100} aria-describedby={d} value={v.allocation} onInput={(e) => setV(i, { allocation: e.currentTarget.value })} />}
            </Field>
            <Field
              label={`Variant ${i + 1} monthly price (USD)`}
              name={`variants[${i}].pricing.monthly`}
              hint="Empty: the tier's price"
              error={err(`variants[${i}].pricing.monthly`, `variants[${i}].pricing`)}
            >
              {(id, d) => <input id={id} inputMode="decimal" aria-describedby={d} value={v.monthly} onInput={(e) => setV(i, { monthly: e.currentTarget.value })} />}
            </Field>
          </div>
        ))}
        <div class="actions">
          <button
            type="button"
            class="secondary small"
            disabled={variants.length >= 5}
            onClick={() =>
              setVariants([...variants, { variantId: String.fromCharCode(97 + variants.length), name: `Variant ${String.fromCharCode(65 + variants.length)}`, allocation: "0", monthly: "" }])
            }
          >
            Add variant
          </button>
          <span class={total === 100 ? "muted" : "field-error"} role="status">
            Traffic adds up to {total}%{total === 100 ? "" : " (must be 100%)"}
          </span>
        </div>
        <ErrorBanner error={create.error} shownFields={["name", "targetTier", "minSampleSize", "confidenceLevel", "hypothesis"]} />
        <div class="form-actions">
          <button type="submit" disabled={create.busy || total !== 100}>
            {create.busy ? "Creating…" : "Create draft"}
          </button>
        </div>
      </form>
    </>
  );
}

function ResultsView({ r, variants }: { r: Results; variants: Schemas["Variant"][] }) {
  const name = (id?: string) => variants.find((v) => v.variantId === id)?.name ?? id ?? "";
  return (
    <>
      {r.srm.mismatch && (
        <div class="banner warn" role="alert" data-testid="srm-warning">
          Sample ratio mismatch: the traffic each variant got does not match the split (χ² {r.srm.chiSquare?.toFixed(2)}, p ={" "}
          {r.srm.pValue?.toExponential(2)}). Check the assignment before trusting these results.
        </div>
      )}
      <div class={`banner ${r.statisticalSignificance ? "ok" : "info"}`} data-testid="significance">
        {r.statisticalSignificance ? `Significant: ${name(r.winner)} wins.` : "Not significant yet."}{" "}
        {r.pValue !== undefined && r.pValue !== null && `p = ${r.pValue.toFixed(4)}. `}
        {r.recommendation}
      </div>
      <ChartView
        testid="results-chart"
        label="Conversion rate of each variant with its confidence interval"
        config={{
          type: "bar",
          data: {
            labels: r.results.map((x) => name(x.variantId)),
            datasets: [
              {
                label: "Conversion rate (%)",
                data: r.results.map((x) => (x.conversionRate ?? 0) * 100),
                backgroundColor: r.results.map((_, i) => PALETTE[i % PALETTE.length] ?? "#2754c5"),
              },
              {
                label: "Confidence interval (%)",
                data: r.results.map((x) => [(x.confidenceInterval?.lower ?? 0) * 100, (x.confidenceInterval?.upper ?? 0) * 100] as [number, number]),
                backgroundColor: "rgba(27,35,48,0.22)",
                borderColor: "#1b2330",
                borderWidth: 1,
                // drawn over the rate's bar, narrower, so the interval reads as its whisker
                grouped: false,
                barPercentage: 0.25,
              },
            ],
          },
          options: { scales: { y: { beginAtZero: true, title: { display: true, text: "%" } } } },
        }}
      />
      <div class="table-wrap">
        <table data-testid="results-table">
          <thead>
            <tr>
              <th>Variant</th>
              <th class="num">Participants</th>
              <th class="num">Conversions</th>
              <th class="num">Rate</th>
              <th class="num">Interval</th>
              <th class="num">Revenue</th>
            </tr>
          </thead>
          <tbody>
            {r.results.map((x) => (
              <tr key={x.variantId}>
                <td>{name(x.variantId)}</td>
                <td class="num">{formatCount(x.participants)}</td>
                <td class="num">{formatCount(x.conversions)}</td>
                <td class="num">{((x.conversionRate ?? 0) * 100).toFixed(1)}%</td>
                <td class="num">
                  {((x.confidenceInterval?.lower ?? 0) * 100).toFixed(1)}–{((x.confidenceInterval?.upper ?? 0) * 100).toFixed(1)}%
                </td>
                <td class="num">{formatMoney(x.revenue)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function ExperimentPage({ experimentId }: { experimentId: string }) {
  const exp = useAsync(() => ok(api.GET("/api/admin/experiments/{experimentId}", { params: { path: { experimentId } } })), [experimentId]);
  // Fetched beside the experiment, not after it; an action reloads both. The
  // results chart's Chart.js comes in the same round trip.
  preloadCharts().catch(() => undefined);
  const results = useAsync(
    () => ok(api.GET("/api/admin/experiments/{experimentId}/results", { params: { path: { experimentId } } })),
    [experimentId],
  );
  const path = { params: { path: { experimentId } } };
  const act = useAction(async (which: "start" | "pause" | "complete" | "cancel" | "implement") => {
    if (which === "start") await ok(api.POST("/api/admin/experiments/{experimentId}/start", path));
    if (which === "pause") await ok(api.POST("/api/admin/experiments/{experimentId}/pause", path));
    if (which === "complete") await ok(api.POST("/api/admin/experiments/{experimentId}/complete", path));
    if (which === "cancel") await ok(api.POST("/api/admin/experiments/{experimentId}/cancel", path));
    if (which === "implement") await ok(api.POST("/api/admin/experiments/{experimentId}/implement-winner", { ...path, body: {} }));
    exp.reload();
    results.reload();
  });
  const x: Experiment | undefined = exp.data;
  return (
    <>
      <div class="page-head">
        <h1>{x?.name ?? "Experiment"}</h1>
        <Link href="/experiments">← All experiments</Link>
      </div>
      <ErrorBanner error={exp.error} />
      {!x && <Loading />}
      {x && (
        <>
          <section class="card section" data-testid="experiment-summary">
            <div class="section-head">
              <h2>
                <Badge value={x.status} /> on {x.targetTier}
              </h2>
              <div class="actions">
                {(x.status === "draft" || x.status === "paused") && (
                  <button type="button" disabled={act.busy} onClick={() => void act.go("start")}>
                    {x.status === "paused" ? "Resume" : "Start"}
                  </button>
                )}
                {x.status === "active" && (
                  <button type="button" class="secondary" disabled={act.busy} onClick={() => void act.go("pause")}>
                    Pause
                  </button>
                )}
                {(x.status === "active" || x.status === "paused") && (
                  <button type="button" class="secondary" disabled={act.busy} onClick={() => void act.go("complete")}>
                    Complete
                  </button>
                )}
                {x.status === "completed" && !x.winner && results.data?.hasWinner && (
                  <button type="button" disabled={act.busy} onClick={() => void act.go("implement")}>
                    Implement winner
                  </button>
                )}
                {(x.status === "draft" || x.status === "active" || x.status === "paused") && (
                  <button type="button" class="secondary" disabled={act.busy} onClick={() => void act.go("cancel")}>
                    Cancel
                  </button>
                )}
              </div>
            </div>
            <ErrorBanner error={act.error} />
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>Variant</th>
                    <th class="num">Traffic</th>
                    <th class="num">Monthly</th>
                    <th class="num">Yearly</th>
                  </tr>
                </thead>
                <tbody>
                  {(x.variants ?? []).map((v) => (
                    <tr key={v.variantId}>
                      <td>
                        {v.name} {v.isControl && <span class="badge">control</span>}
                      </td>
                      <td class="num">{v.allocation}%</td>
                      <td class="num">{formatMoney(v.pricing?.monthly)}</td>
                      <td class="num">{formatMoney(v.pricing?.yearly)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <p class="muted">
              Started {formatDate(x.startDate)} · phase {x.phase ?? 1} {x.winner ? `· winner ${x.winner}` : ""}
            </p>
          </section>
          <Section title="Results" id="h-results">
            <ErrorBanner error={results.error} />
            {results.data ? <ResultsView r={results.data} variants={x.variants ?? []} /> : <Loading />}
          </Section>
        </>
      )}
    </>
  );
}
