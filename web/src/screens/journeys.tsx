import { useState } from "preact/hooks";
import { api, ok, type Schemas } from "../api/client";
import { formatDate, formatMoney } from "../format";
import { navigate, useLocation } from "../router";
import { Badge, ErrorBanner, Link, Loading, Section, useAsync, usePager, PagedTable } from "../ui";

type Row = Schemas["PartnerRow"];
type List = "churn-risk" | "upsell" | "win-back";
const LISTS: { list: List; label: string }[] = [
  { list: "churn-risk", label: "Churn risk" },
  { list: "upsell", label: "Upsell" },
  { list: "win-back", label: "Win-back" },
];

export function JourneysScreen() {
  const { query } = useLocation();
  const partner = query.get("partner");
  return partner ? <Journey partnerId={partner} /> : <Lists />;
}

function Lists() {
  const [list, setList] = useState<List>("churn-risk");
  const pager = usePager(list);
  const page = useAsync(() => {
    const query = { limit: 20, cursor: pager.cursor };
    if (list === "churn-risk") return ok(api.GET("/api/admin/partners/churn-risk", { params: { query } }));
    if (list === "upsell") return ok(api.GET("/api/admin/partners/upsell-opportunities", { params: { query } }));
    return ok(api.GET("/api/admin/partners/win-back", { params: { query } }));
  }, [list, pager.cursor]);
  return (
    <>
      <div class="page-head">
        <h1>Customer journeys</h1>
      </div>
      <div class="tabs" role="tablist" aria-label="Lists">
        {LISTS.map((l) => (
          <button key={l.list} type="button" role="tab" aria-selected={list === l.list} class={list === l.list ? "tab on" : "tab"} onClick={() => setList(l.list)}>
            {l.label}
          </button>
        ))}
      </div>
      <ErrorBanner error={page.error} />
      <section class="card section" role="tabpanel">
        {page.data ? (
          <>
            <PagedTable
              testid="journey-list"
              head={
                <>
                  <th>Partner</th>
                  <th>Tier</th>
                  <th>Status</th>
                  <th class="num">MRR</th>
                  <th>{list === "upsell" ? "Upsell score" : "Churn risk"}</th>
                  <th>Why</th>
                </>
              }
              columns={6}
              items={page.data.items}
              row={(p: Row) => (
                <tr key={p.partnerId}>
                  <td>
                    <Link href={`/journeys?partner=${encodeURIComponent(p.partnerId)}`}>{p.companyName}</Link>
                  </td>
                  <td>{p.engagementTier}</td>
                  <td>
                    <Badge value={p.subscriptionStatus} />
                  </td>
                  <td class="num">{formatMoney(p.mrr, p.currency)}</td>
                  <td>
                    {list === "upsell" ? (
                      `${p.upsell.score}${p.upsell.recommendedTier ? ` → ${p.upsell.recommendedTier}` : ""}`
                    ) : (
                      <>
                        <Badge value={p.churnRisk.level} /> {p.churnRisk.probability}%
                      </>
                    )}
                  </td>
                  <td class="wrap">
                    {(list === "upsell" ? p.upsell.reasons : p.churnRisk.factors)
                      .slice(0, 2)
                      .map((f) => f.description)
                      .join("; ") || (list === "win-back" ? `churned ${formatDate(p.churnedDate)} from ${p.churnedFromTier ?? "—"}` : "—")}
                  </td>
                </tr>
              )}
              empty="Nobody on this list."
              nextCursor={page.data.nextCursor}
              pager={pager}
            />
          </>
        ) : (
          <Loading />
        )}
      </section>
    </>
  );
}

function Factors({ factors }: { factors: Schemas["Factor"][] }) {
  if (!factors.length) return <p class="muted">No factors.</p>;
  return (
    <ul>
      {factors.map((f) => (
        <li key={f.code}>
          {f.description} <span class="muted">(+{f.weight})</span>
        </li>
      ))}
    </ul>
  );
}

function Journey({ partnerId }: { partnerId: string }) {
  const journey = useAsync(() => ok(api.GET("/api/admin/partners/{partnerId}/journey", { params: { path: { partnerId } } })), [partnerId]);
  const j = journey.data;
  return (
    <>
      <div class="page-head">
        <h1>{j?.name ?? "Customer journey"}</h1>
        <div class="actions">
          <Link href={`/partners/${encodeURIComponent(partnerId)}`}>Partner page</Link>
          <a
            href="/journeys"
            onClick={(e) => {
              e.preventDefault();
              navigate("/journeys");
            }}
          >
            ← Lists
          </a>
        </div>
      </div>
      <ErrorBanner error={journey.error} />
      {!j && <Loading />}
      {j && (
        <>
          <div class="cards">
            <div class="card stat">
              <div class="stat-title">Tier</div>
              <div class="stat-value">{j.currentTierName}</div>
              <div class="stat-sub">
                <Badge value={j.subscriptionStatus} />
              </div>
            </div>
            <div class="card stat">
              <div class="stat-title">MRR</div>
              <div class="stat-value">{formatMoney(j.mrr, j.currency)}</div>
            </div>
            <div class="card stat">
              <div class="stat-title">Lifetime value</div>
              <div class="stat-value">{formatMoney(j.lifetimeValue, j.currency)}</div>
              <div class="stat-sub">spent {formatMoney(j.totalSpent, j.currency)}</div>
            </div>
            <div class="card stat">
              <div class="stat-title">Customer for</div>
              <div class="stat-value">{j.daysAsCustomer} days</div>
              <div class="stat-sub">since {formatDate(j.signupDate)}</div>
            </div>
          </div>
          <div class="grid2">
            <Section title="Churn risk" id="h-churn">
              <p data-testid="churn-score">
                <Badge value={j.churnRisk} /> {j.churnProbability}%
              </p>
              <Factors factors={j.churnFactors} />
            </Section>
            <Section title="Upsell" id="h-upsell">
              <p data-testid="upsell-score">
                Score {j.upsellScore}
                {j.recommendedTier ? ` · recommended: ${j.recommendedTier}` : ""}
              </p>
              <Factors factors={j.upsellReasons} />
            </Section>
          </div>
          <Section title={`Timeline (${j.transitionCount} transitions)`} id="h-timeline">
            <ul class="timeline" data-testid="journey-timeline">
              {j.transitions.map((t) => (
                <li key={t.transitionId}>
                  <Badge value={t.event} /> {t.fromTier ?? "—"} → {t.toTier} · <span class="muted">{formatDate(t.timestamp)}</span>
                  {t.financialImpact.mrrChange !== 0 && <span> · MRR {formatMoney(t.financialImpact.mrrChange, j.currency)}</span>}
                </li>
              ))}
            </ul>
          </Section>
          <Section title="Sales notes" id="h-journey-notes">
            <ul class="timeline">
              {j.salesNotes.map((n, i) => (
                <li key={i}>
                  <strong>{n.contactType}</strong> by {n.rep} · <span class="muted">{formatDate(n.timestamp)}</span>
                  <div>{n.note}</div>
                </li>
              ))}
              {j.salesNotes.length === 0 && <li class="muted">No notes.</li>}
            </ul>
          </Section>
        </>
      )}
    </>
  );
}
