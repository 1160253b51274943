import { useState } from "preact/hooks";
import { api, downloadCsv, ok, type Schemas } from "../api/client";
import { formatDate, formatMoney } from "../format";
import { Badge, ErrorBanner, Field, Link, Loading, Pager, useAction, useAsync, usePager } from "../ui";
import { useTiers } from "../shared";

type View = Schemas["SubscriptionView"];
type Row = Schemas["PartnerRow"];
type Transition = Schemas["TierTransition"];
const VIEWS: { view: View; label: string }[] = [
  { view: "active", label: "Active" },
  { view: "expiring", label: "Expiring soon" },
  { view: "expired", label: "Expired" },
  { view: "cancelled", label: "Cancelled" },
  { view: "history", label: "History" },
];

export function SubscriptionsScreen() {
  const tiers = useTiers();
  const [view, setView] = useState<View>("active");
  const [tier, setTier] = useState("");
  const [sort, setSort] = useState<"expiration" | "-expiration">("expiration");
  const key = `${view}|${tier}|${sort}`;
  const pager = usePager(key);
  const list = useAsync(
    () =>
      ok(
        api.GET("/api/admin/subscriptions", {
          params: { query: { view, tier: tier || undefined, sort, limit: 25, cursor: pager.cursor } },
        }),
      ),
    [key, pager.cursor],
  );
  const csv = useAction(async () => {
    const q = new URLSearchParams({ view, sort, limit: "1000" });
    if (tier) q.set("tier", tier);
    await downloadCsv(`/api/admin/subscriptions?${q.toString()}`, `subscriptions-${view}.csv`);
  });
  return (
    <>
      <div class="page-head">
        <h1>Subscriptions</h1>
        <button type="button" class="secondary small" disabled={csv.busy} onClick={() => void csv.go()}>
          {csv.busy ? "Exporting…" : "Export CSV"}
        </button>
      </div>
      <div class="tabs" role="tablist" aria-label="Dashboard views">
        {VIEWS.map((v) => (
          <button
            key={v.view}
            type="button"
            role="tab"
            aria-selected={view === v.view}
            class={view === v.view ? "tab on" : "tab"}
            onClick={() => setView(v.view)}
          >
            {v.label}
          </button>
        ))}
      </div>
      <div class="filters">
        <Field label="Tier" name="tier">
          {(id) => (
            <select id={id} value={tier} onChange={(e) => setTier(e.currentTarget.value)}>
              <option value="">All tiers</option>
              {tiers.data?.items.map((t) => (
                <option key={t.tierId} value={t.tierId}>
                  {t.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Order" name="sort">
          {(id) => (
            <select id={id} value={sort} onChange={(e) => setSort(e.currentTarget.value as "expiration")}>
              <option value="expiration">{view === "history" ? "Newest first" : "Soonest first"}</option>
              <option value="-expiration">{view === "history" ? "Oldest first" : "Latest first"}</option>
            </select>
          )}
        </Field>
      </div>
      <ErrorBanner error={list.error ?? csv.error} />
      <section class="card section" role="tabpanel">
        {list.data ? (
          <>
            <div class="table-wrap">
              {list.data.view === "history" ? (
                <HistoryTable items={list.data.items as Transition[]} />
              ) : (
                <PartnerTable items={list.data.items as Row[]} />
              )}
            </div>
            <Pager page={pager.page} nextCursor={list.data.nextCursor} onNext={() => pager.next(list.data?.nextCursor)} onPrev={pager.prev} />
          </>
        ) : (
          <Loading />
        )}
      </section>
    </>
  );
}

function PartnerTable({ items }: { items: Row[] }) {
  return (
    <table data-testid="subscriptions-table">
      <thead>
        <tr>
          <th>Partner</th>
          <th>Tier</th>
          <th>Status</th>
          <th class="num">MRR</th>
          <th>Ends</th>
          <th class="num">Days left</th>
          <th>Renews</th>
          <th>Rep</th>
        </tr>
      </thead>
      <tbody>
        {items.map((p) => (
          <tr key={p.partnerId}>
            <td>
              <Link href={`/partners/${encodeURIComponent(p.partnerId)}`}>{p.companyName}</Link>
            </td>
            <td>{p.engagementTier}</td>
            <td>
              <Badge value={p.subscriptionStatus} />
            </td>
            <td class="num">{formatMoney(p.mrr, p.currency)}</td>
            <td>{formatDate(p.subscriptionEndDate)}</td>
            <td class="num">{p.daysUntilExpiration ?? "—"}</td>
            <td>{p.autoRenewal ? "yes" : "no"}</td>
            <td>{p.assignedSalesRep ?? "—"}</td>
          </tr>
        ))}
        {items.length === 0 && (
          <tr>
            <td colSpan={8} class="muted">
              Nothing in this view.
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

function HistoryTable({ items }: { items: Transition[] }) {
  return (
    <table data-testid="subscriptions-table">
      <thead>
        <tr>
          <th>When</th>
          <th>Partner</th>
          <th>Event</th>
          <th>From</th>
          <th>To</th>
          <th class="num">MRR change</th>
        </tr>
      </thead>
      <tbody>
        {items.map((t) => (
          <tr key={t.transitionId}>
            <td>{formatDate(t.timestamp)}</td>
            <td>
              <Link href={`/partners/${encodeURIComponent(t.partnerId)}`}>{t.partnerId}</Link>
            </td>
            <td>
              <Badge value={t.event} />
            </td>
            <td>{t.fromTier ?? "—"}</td>
            <td>{t.toTier}</td>
            <td class="num">{formatMoney(t.financialImpact.mrrChange)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
