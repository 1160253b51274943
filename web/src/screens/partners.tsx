import { useState } from "preact/hooks";
import { api, ok, type Schemas } from "../api/client";
import { currentSession } from "../auth";
import { formatDate, formatMoney, formatPercent } from "../format";
import { navigate } from "../router";
import { isManager, useTiers } from "../shared";
import { Badge, ErrorBanner, Field, fieldError, Link, Loading, Pager, Section, useAction, useAsync, usePager, PagedTable } from "../ui";

type Partner = Schemas["Partner"];
type Preview = Schemas["TierChangePreview"];
const STATUSES: Schemas["SubscriptionStatus"][] = ["active", "trialing", "past_due", "cancelled", "expired"];

export function PartnersScreen({ sub }: { sub: string }) {
  return sub ? <PartnerPage partnerId={decodeURIComponent(sub)} /> : <PartnerList />;
}

function PartnerList() {
  const tiers = useTiers();
  const [filters, setFilters] = useState({ name: "", tier: "", status: "", email: "" });
  const [draft, setDraft] = useState(filters);
  const key = JSON.stringify(filters);
  const pager = usePager(key);
  const list = useAsync(
    () =>
      ok(
        api.GET("/api/admin/partners", {
          params: {
            query: {
              limit: 20,
              cursor: pager.cursor,
              tier: filters.tier || undefined,
              status: (filters.status || undefined) as Schemas["SubscriptionStatus"] | undefined,
              email: filters.email || undefined,
              name: filters.name.trim() || undefined,
            },
          },
        }),
      ),
    [key, pager.cursor],
  );
  return (
    <>
      <div class="page-head">
        <h1>Partners</h1>
      </div>
      <form
        class="card filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        <Field label="Company name starts with" name="name" error={fieldError(list.error, "name")}>
          {(id, d) => (
            <input id={id} type="search" value={draft.name} aria-describedby={d} onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })} />
          )}
        </Field>
        <Field label="Tier" name="tier">
          {(id) => (
            <select id={id} value={draft.tier} onChange={(e) => setDraft({ ...draft, tier: e.currentTarget.value })}>
              <option value="">All tiers</option>
              {tiers.data?.items.map((t) => (
                <option key={t.tierId} value={t.tierId}>
                  {t.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Status" name="status">
          {(id) => (
            <select id={id} value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value })}>
              <option value="">Any status</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s.replace("_", " ")}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Email (exact)" name="email" error={fieldError(list.error, "email")}>
          {(id, d) => (
            <input id={id} type="search" value={draft.email} aria-describedby={d} onInput={(e) => setDraft({ ...draft, email: e.currentTarget.value })} />
          )}
        </Field>
        <button type="submit">Search</button>
      </form>
      <ErrorBanner error={list.error} shownFields={["email", "name"]} />
      <section class="card section">
        {list.data ? (
          <>
            <PagedTable
              testid="partners-table"
              head={
                <>
                  <th>Company</th>
                  <th>Tier</th>
                  <th>Status</th>
                  <th class="num">MRR</th>
                  <th>Ends</th>
                  <th>Rep</th>
                  <th>Churn risk</th>
                </>
              }
              columns={7}
              items={list.data.items}
              row={(p) => (
                <tr key={p.partnerId}>
                  <td>
                    <Link href={`/partners/${encodeURIComponent(p.partnerId)}`}>{p.companyName}</Link>
                    <div class="muted">{p.primaryEmail}</div>
                  </td>
                  <td>{p.engagementTier}</td>
                  <td>
                    <Badge value={p.subscriptionStatus} />
                  </td>
                  <td class="num">{formatMoney(p.mrr, p.currency)}</td>
                  <td>{formatDate(p.subscriptionEndDate)}</td>
                  <td>{p.assignedSalesRep ?? "—"}</td>
                  <td>
                    <Badge value={p.churnRisk.level} />
                  </td>
                </tr>
              )}
              empty="No partners match."
              nextCursor={list.data.nextCursor}
              pager={pager}
            />
          </>
        ) : (
          list.loading && <Loading what="Loading partners" />
        )}
      </section>
    </>
  );
}

function PartnerPage({ partnerId }: { partnerId: string }) {
  const partner = useAsync(() => ok(api.GET("/api/admin/partners/{partnerId}", { params: { path: { partnerId } } })), [partnerId]);
  const p = partner.data;
  return (
    <>
      <div class="page-head">
        <h1>{p ? p.companyName : "Partner"}</h1>
        <Link href="/partners">← All partners</Link>
      </div>
      <ErrorBanner error={partner.error} />
      {!p && partner.loading && <Loading />}
      {p && (
        <>
          <section class="card section" data-testid="partner-summary">
            <dl class="props">
              <dt>Partner</dt>
              <dd>
                <code>{p.partnerId}</code>
              </dd>
              <dt>Email</dt>
              <dd>{p.primaryEmail}</dd>
              <dt>Tier</dt>
              <dd data-testid="partner-tier">{p.engagementTier}</dd>
              <dt>Status</dt>
              <dd>
                <Badge value={p.subscriptionStatus} />
              </dd>
              <dt>Price</dt>
              <dd>
                {formatMoney(p.pricePerPeriod, p.currency)} / {p.billingPeriod ?? "—"}
                {p.discountPercent ? ` (−${formatPercent(p.discountPercent, 2)})` : ""}
              </dd>
              <dt>MRR</dt>
              <dd data-testid="partner-mrr">{formatMoney(p.mrr, p.currency)}</dd>
              <dt>Term</dt>
              <dd>
                {formatDate(p.subscriptionStartDate)} – {formatDate(p.subscriptionEndDate)} {p.autoRenewal ? "(renews)" : "(does not renew)"}
              </dd>
              <dt>Churn risk</dt>
              <dd>
                <Badge value={p.churnRisk.level} /> {formatPercent(p.churnRisk.probability, 0)}
              </dd>
              <dt>Sales rep</dt>
              <dd data-testid="partner-rep">{p.assignedSalesRep ?? "unassigned"}</dd>
            </dl>
          </section>
          <div class="grid2">
            <TierChange partner={p} onChanged={partner.reload} />
            <Assignment partner={p} onChanged={partner.reload} />
          </div>
          <Notes partnerId={p.partnerId} />
          <History partnerId={p.partnerId} version={p.version} />
        </>
      )}
    </>
  );
}

function TierChange({ partner, onChanged }: { partner: Partner; onChanged: () => void }) {
  const tiers = useTiers();
  const [form, setForm] = useState({ tier: "", billingPeriod: partner.billingPeriod ?? "monthly", reason: "" });
  const [preview, setPreview] = useState<Preview | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const body = (): Schemas["TierChangeRequest"] => {
    const tier = tiers.data?.items.find((t) => t.tierId === form.tier);
    const paid = tier ? tier.prices.monthly > 0 : true;
    return {
      tier: form.tier,
      reason: form.reason || undefined,
      version: partner.version,
      ...(paid ? { billingPeriod: form.billingPeriod as Schemas["BillingPeriod"] } : {}),
    };
  };
  const previewAction = useAction(async () => {
    setDone(null);
    const r = await ok(
      api.PATCH("/api/admin/partners/{partnerId}/engagement-tier", {
        params: { path: { partnerId: partner.partnerId }, query: { dryRun: true } },
        body: body(),
      }),
    );
    if (!("dryRun" in r)) throw new Error("The API did not answer with a preview");
    setPreview(r);
  });
  const confirm = useAction(async () => {
    await ok(
      api.PATCH("/api/admin/partners/{partnerId}/engagement-tier", {
        params: { path: { partnerId: partner.partnerId } },
        body: body(),
      }),
    );
    setDone(`Moved to ${form.tier}.`);
    setPreview(null);
    onChanged();
  });
  if (!isManager()) {
    return (
      <Section title="Change tier" id="h-tier-change">
        <p class="muted">Tier changes need a sales manager or an admin.</p>
      </Section>
    );
  }
  const err = previewAction.error ?? confirm.error;
  return (
    <Section title="Change tier" id="h-tier-change">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void previewAction.go();
        }}
      >
        <div class="form-grid">
          <Field label="New tier" name="tier" error={fieldError(err, "tier")}>
            {(id, d) => (
              <select
                id={id}
                aria-describedby={d}
                value={form.tier}
                onChange={(e) => {
                  setForm({ ...form, tier: e.currentTarget.value });
                  setPreview(null);
                }}
              >
                <option value="">Pick a tier</option>
                {tiers.data?.items
                  .filter((t) => t.status === "active")
                  .map((t) => (
                    <option key={t.tierId} value={t.tierId}>
                      {t.name} ({formatMoney(t.prices.monthly, t.currency)}/mo)
                    </option>
                  ))}
              </select>
            )}
          </Field>
          <Field label="Billing period" name="billingPeriod" error={fieldError(err, "billingPeriod")}>
            {(id, d) => (
              <select id={id} aria-describedby={d} value={form.billingPeriod} onChange={(e) => setForm({ ...form, billingPeriod: e.currentTarget.value as "monthly" })}>
                <option value="monthly">Monthly</option>
                <option value="yearly">Yearly</option>
              </select>
            )}
          </Field>
          <Field label="Reason" name="reason" error={fieldError(err, "reason")}>
            {(id, d) => <input id={id} aria-describedby={d} value={form.reason} onInput={(e) => setForm({ ...form, reason: e.currentTarget.value })} />}
          </Field>
        </div>
        <div class="form-actions">
          <button type="submit" class="secondary" disabled={!form.tier || previewAction.busy}>
            {previewAction.busy ? "Previewing…" : "Preview change"}
          </button>
        </div>
      </form>
      <ErrorBanner error={err} shownFields={["tier", "billingPeriod", "reason"]} />
      {done && (
        <div class="banner ok" role="status">
          {done}
        </div>
      )}
      {preview && (
        <div class="banner info" data-testid="tier-preview">
          <strong>
            {preview.event}: {preview.currentTier.name ?? preview.currentTier.tierId} → {preview.newTier.name ?? preview.newTier.tierId}
          </strong>
          <dl class="props">
            <dt>Price</dt>
            <dd>
              {formatMoney(preview.currentTier.pricePerPeriod, partner.currency)} → {formatMoney(preview.newTier.pricePerPeriod, partner.currency)} /{" "}
              {preview.billingPeriod ?? "—"}
            </dd>
            <dt>MRR</dt>
            <dd data-testid="preview-mrr">
              {formatMoney(preview.currentMRR, partner.currency)} → {formatMoney(preview.newMRR, partner.currency)} ({preview.mrrChange >= 0 ? "+" : ""}
              {formatMoney(preview.mrrChange, partner.currency)})
            </dd>
            <dt>Term</dt>
            <dd>
              {formatDate(preview.subscriptionStartDate)} – {formatDate(preview.subscriptionEndDate)}
            </dd>
            <dt>Status</dt>
            <dd>{preview.subscriptionStatus}</dd>
            <dt>Expected LTV</dt>
            <dd>{formatMoney(preview.expectedLTV, partner.currency)}</dd>
          </dl>
          <div class="form-actions">
            <button type="button" disabled={confirm.busy} onClick={() => void confirm.go()}>
              {confirm.busy ? "Saving…" : "Confirm change"}
            </button>
            <button type="button" class="secondary" onClick={() => setPreview(null)}>
              Cancel
            </button>
          </div>
        </div>
      )}
    </Section>
  );
}

function Assignment({ partner, onChanged }: { partner: Partner; onChanged: () => void }) {
  const me = currentSession()?.subject ?? "";
  const [rep, setRep] = useState(partner.assignedSalesRep ?? "");
  const assign = useAction(async (salesRep: string) => {
    await ok(
      api.POST("/api/admin/partners/{partnerId}/assign", {
        params: { path: { partnerId: partner.partnerId } },
        body: { salesRep, version: partner.version },
      }),
    );
    onChanged();
  });
  return (
    <Section title="Assignment" id="h-assign">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void assign.go(rep);
        }}
      >
        {isManager() ? (
          <Field label="Sales rep (user id)" name="salesRep" error={fieldError(assign.error, "salesRep")}>
            {(id, d) => <input id={id} aria-describedby={d} value={rep} onInput={(e) => setRep(e.currentTarget.value)} />}
          </Field>
        ) : (
          <p>
            Assigned to <strong>{partner.assignedSalesRep ?? "nobody"}</strong>.
          </p>
        )}
        <div class="form-actions">
          {isManager() && (
            <button type="submit" disabled={assign.busy || !rep}>
              Assign
            </button>
          )}
          <button type="button" class="secondary" disabled={assign.busy || partner.assignedSalesRep === me} onClick={() => void assign.go(me)}>
            Assign to me
          </button>
        </div>
      </form>
      <ErrorBanner error={assign.error} shownFields={["salesRep"]} />
    </Section>
  );
}

function Notes({ partnerId }: { partnerId: string }) {
  const journey = useAsync(() => ok(api.GET("/api/admin/partners/{partnerId}/journey", { params: { path: { partnerId } } })), [partnerId]);
  const [form, setForm] = useState<{ note: string; contactType: Schemas["ContactType"]; nextAction: string }>({
    note: "",
    contactType: "call",
    nextAction: "",
  });
  const add = useAction(async () => {
    await ok(
      api.POST("/api/admin/partners/{partnerId}/notes", {
        params: { path: { partnerId } },
        body: { note: form.note, contactType: form.contactType, nextAction: form.nextAction || undefined },
      }),
    );
    setForm({ note: "", contactType: "call", nextAction: "" });
    journey.reload();
  });
  const notes = journey.data?.salesNotes ?? [];
  return (
    <Section title="Sales notes" id="h-notes">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void add.go();
        }}
      >
        <div class="form-grid">
          <Field label="Note" name="note" error={fieldError(add.error, "note")}>
            {(id, d) => <textarea id={id} aria-describedby={d} value={form.note} onInput={(e) => setForm({ ...form, note: e.currentTarget.value })} />}
          </Field>
          <Field label="Contact" name="contactType" error={fieldError(add.error, "contactType")}>
            {(id, d) => (
              <select id={id} aria-describedby={d} value={form.contactType} onChange={(e) => setForm({ ...form, contactType: e.currentTarget.value as "call" })}>
                <option value="call">Call</option>
                <option value="email">Email</option>
                <option value="meeting">Meeting</option>
                <option value="note">Note</option>
              </select>
            )}
          </Field>
          <Field label="Next action" name="nextAction" error={fieldError(add.error, "nextAction")}>
            {(id, d) => <input id={id} aria-describedby={d} value={form.nextAction} onInput={(e) => setForm({ ...form, nextAction: e.currentTarget.value })} />}
          </Field>
        </div>
        <div class="form-actions">
          <button type="submit" disabled={add.busy}>
            Add note
          </button>
        </div>
      </form>
      <ErrorBanner error={add.error} shownFields={["note", "contactType", "nextAction"]} />
      <ErrorBanner error={journey.error} />
      <ul class="timeline" data-testid="notes">
        {notes.map((n, i) => (
          <li key={i}>
            <strong>{n.contactType}</strong> by {n.rep} · <span class="muted">{formatDate(n.timestamp)}</span>
            <div>{n.note}</div>
            {n.nextAction && <div class="muted">Next: {n.nextAction}</div>}
          </li>
        ))}
        {notes.length === 0 && !journey.loading && <li class="muted">No notes yet.</li>}
      </ul>
      {journey.data && (
        <p>
          <Link href={`/journeys?partner=${encodeURIComponent(partnerId)}`}>Open the customer journey →</Link>
        </p>
      )}
    </Section>
  );
}

export function History({ partnerId, version }: { partnerId: string; version: number }) {
  const pager = usePager(`${partnerId}:${version}`);
  const history = useAsync(
    () => ok(api.GET("/api/admin/partners/{partnerId}/history", { params: { path: { partnerId }, query: { limit: 10, cursor: pager.cursor } } })),
    [partnerId, version, pager.cursor],
  );
  return (
    <Section title="Tier history" id="h-history">
      <ErrorBanner error={history.error} />
      {history.data ? (
        <>
          <div class="table-wrap">
            <table data-testid="history-table">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Event</th>
                  <th>From</th>
                  <th>To</th>
                  <th class="num">MRR change</th>
                  <th>By</th>
                </tr>
              </thead>
              <tbody>
                {history.data.items.map((t) => (
                  <tr key={t.transitionId}>
                    <td>{formatDate(t.timestamp)}</td>
                    <td>
                      <Badge value={t.event} />
                    </td>
                    <td>{t.fromTier ?? "—"}</td>
                    <td>{t.toTier}</td>
                    <td class="num">{formatMoney(t.financialImpact.mrrChange)}</td>
                    <td>{t.userId}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={pager.page} nextCursor={history.data.nextCursor} onNext={() => pager.next(history.data?.nextCursor)} onPrev={pager.prev} />
        </>
      ) : (
        <Loading />
      )}
    </Section>
  );
}

export function goToPartner(partnerId: string): void {
  navigate(`/partners/${encodeURIComponent(partnerId)}`);
}
