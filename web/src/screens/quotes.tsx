import { useEffect, useState } from "preact/hooks";
import { api, fetchBlobUrl, ok, type Schemas } from "../api/client";
import { currentSession } from "../auth";
import { formatDate, formatMoney, parseMoney } from "../format";
import { LIMITS, LIMIT_LABEL, limitLabel } from "../limits";
import { DISCOUNT_AUTHORITY_PERCENT, estimate, limitsNeedingApproval, needsApproval, type DiscountLine } from "../pricing";
import { navigate } from "../router";
import { Badge, ErrorBanner, Field, fieldError, Link, Loading, Section, useAction, useAsync, usePager, PagedTable } from "../ui";
import { isManager, useTiers } from "../shared";

type Quote = Schemas["StaffQuote"];
type QuoteStatus = Schemas["QuoteStatus"];
const STATUSES: QuoteStatus[] = ["draft", "pending_approval", "sent", "accepted", "rejected", "expired", "cancelled"];

export function QuotesScreen({ sub }: { sub: string }) {
  if (sub === "new") return <QuoteBuilder />;
  if (sub) return <QuotePage quoteId={decodeURIComponent(sub)} />;
  return <QuoteList />;
}

function QuoteList() {
  const [status, setStatus] = useState<QuoteStatus | "">("");
  const pager = usePager(status);
  const list = useAsync(
    () => ok(api.GET("/api/admin/quotes", { params: { query: { limit: 20, cursor: pager.cursor, status: status || undefined } } })),
    [status, pager.cursor],
  );
  return (
    <>
      <div class="page-head">
        <h1>Quotes</h1>
        <Link href="/quotes/new" class="button">
          New quote
        </Link>
      </div>
      <div class="filters">
        <Field label="Status" name="status">
          {(id) => (
            <select id={id} value={status} onChange={(e) => setStatus(e.currentTarget.value as QuoteStatus | "")}>
              <option value="">All (newest first)</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s.replace("_", " ")}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <ErrorBanner error={list.error} />
      <section class="card section">
        {list.data ? (
          <>
            <PagedTable
              testid="quotes-table"
              head={
                <>
                  <th>Quote</th>
                  <th>Prospect</th>
                  <th>Tier</th>
                  <th class="num">Price</th>
                  <th class="num">Discount</th>
                  <th>Status</th>
                  <th class="num">Views</th>
                  <th>Valid until</th>
                  <th>Rep</th>
                </>
              }
              columns={9}
              items={list.data.items}
              row={(q) => (
                <tr key={q.quoteId}>
                  <td>
                    <Link href={`/quotes/${encodeURIComponent(q.quoteId)}`}>{q.quoteNumber}</Link>
                  </td>
                  <td>
                    {q.prospectName}
                    <div class="muted">{q.prospectCompany ?? q.prospectEmail}</div>
                  </td>
                  <td>{q.baseTierName}</td>
                  <td class="num">
                    {formatMoney(q.finalPrice, q.currency)}/{q.billingPeriod === "yearly" ? "yr" : "mo"}
                  </td>
                  <td class="num">{q.totalDiscountPercent !== undefined ? `${q.totalDiscountPercent}%` : "—"}</td>
                  <td>
                    <Badge value={q.status} />
                  </td>
                  <td class="num">{q.viewCount}</td>
                  <td>{formatDate(q.validUntil)}</td>
                  <td>{q.salesRep}</td>
                </tr>
              )}
              empty="No quotes here."
              nextCursor={list.data.nextCursor}
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

interface DraftDiscount {
  type: "percentage" | "fixed_amount";
  value: string;
  reason: string;
}

function discountValue(d: DraftDiscount): number | null {
  if (d.type === "fixed_amount") return parseMoney(d.value);
  return /^\d+(\.\d{1,2})?$/.test(d.value.trim()) ? Number(d.value) : null;
}

interface DraftLimit {
  name: string;
  value: string;
}

interface StoredCustomizations {
  additionalListings?: { quantity?: number };
  additionalImages?: { quantity?: number };
  customFeatures?: { featureId: string; name: string; price: number }[];
  customLimits?: Record<string, number>;
}

function storedCustomizations(q: Quote): StoredCustomizations {
  return q.customizations as unknown as StoredCustomizations;
}

/** A saved quote back into the builder's typed text (the editor starts from what the API holds). */
function toDraft(quote?: Quote) {
  const c = quote ? storedCustomizations(quote) : {};
  return {
    fields: {
      prospectName: quote?.prospectName ?? "",
      prospectEmail: quote?.prospectEmail ?? "",
      prospectCompany: quote?.prospectCompany ?? "",
      baseTier: quote?.baseTier ?? "",
      billingPeriod: quote?.billingPeriod ?? ("monthly" as "monthly" | "yearly"),
      commitmentMonths: quote?.commitmentMonths ? String(quote.commitmentMonths) : "",
      notes: quote?.notes ?? "",
      additionalListings: c.additionalListings?.quantity ? String(c.additionalListings.quantity) : "",
      additionalImages: c.additionalImages?.quantity ? String(c.additionalImages.quantity) : "",
    },
    discounts: (quote?.discounts ?? []).map(
      (d): DraftDiscount => ({
        type: d.type ?? "percentage",
        value: d.type === "fixed_amount" ? ((d.value ?? 0) / 100).toFixed(2) : String(d.value ?? ""),
        reason: d.reason ?? "",
      }),
    ),
    limits: Object.entries(c.customLimits ?? {}).map(([name, value]): DraftLimit => ({ name, value: String(value) })),
  };
}

/** The builder: a new quote, or (with `quote`) an edit of a draft or pending one. */
function QuoteBuilder({ quote, onSaved, onCancel }: { quote?: Quote; onSaved?: (approvalCleared: boolean) => void; onCancel?: () => void }) {
  const tiers = useTiers();
  const role = currentSession()?.role ?? "sales_rep";
  const [initial] = useState(() => toDraft(quote));
  const [q, setQ] = useState(initial.fields);
  const [discounts, setDiscounts] = useState<DraftDiscount[]>(initial.discounts);
  const [limits, setLimits] = useState<DraftLimit[]>(initial.limits);
  const tier = tiers.data?.items.find((t) => t.tierId === q.baseTier);
  const base = tier ? (q.billingPeriod === "yearly" ? tier.prices.yearly : tier.prices.monthly) : 0;
  const lines: DiscountLine[] = discounts.flatMap((d) => {
    const v = discountValue(d);
    return v === null ? [] : [{ type: d.type, value: v }];
  });
  const est = estimate(base, lines);
  const customLimits: Record<string, number> = Object.fromEntries(
    limits.filter((l) => l.name && /^\d+$/.test(l.value.trim())).map((l) => [l.name, Number(l.value)]),
  );
  const limitsOver = tier ? limitsNeedingApproval(role, tier.limits, customLimits) : [];
  const discountOver = tier ? needsApproval(role, base, est.totalDiscount) : false;
  const overAuthority = discountOver || limitsOver.length > 0;
  const cap = DISCOUNT_AUTHORITY_PERCENT[role];
  const wasApproved = quote?.approval?.outcome === "approved";
  const save = useAction(async () => {
    const customizations = {
      additionalListings: q.additionalListings ? { quantity: Number(q.additionalListings) } : undefined,
      additionalImages: q.additionalImages ? { quantity: Number(q.additionalImages) } : undefined,
      // kept as saved: the builder does not edit custom features, and an edit must not drop them
      customFeatures: quote ? storedCustomizations(quote).customFeatures?.map(({ featureId, name, price }) => ({ featureId, name, price })) : undefined,
      // a row that is not a count is sent as typed so the API names the field
      customLimits: limits.length ? Object.fromEntries(limits.map((l) => [l.name, /^\d+$/.test(l.value.trim()) ? Number(l.value) : Number.NaN])) : undefined,
    };
    const hasCustomizations = Object.values(customizations).some((v) => v !== undefined);
    const discountBody = discounts.map((d) => ({ type: d.type, value: discountValue(d) ?? Number.NaN, reason: d.reason }));
    if (quote) {
      await ok(
        api.PUT("/api/admin/quotes/{quoteId}", {
          params: { path: { quoteId: quote.quoteId } },
          body: {
            version: quote.version,
            prospectName: q.prospectName,
            prospectEmail: q.prospectEmail,
            prospectCompany: q.prospectCompany || null,
            baseTier: q.baseTier,
            billingPeriod: q.billingPeriod,
            commitmentMonths: q.commitmentMonths ? Number(q.commitmentMonths) : null,
            notes: q.notes || null,
            customizations: hasCustomizations ? customizations : {},
            discounts: discountBody,
          },
        }),
      );
      onSaved?.(wasApproved);
      return;
    }
    const created = await ok(
      api.POST("/api/admin/quotes", {
        body: {
          prospectName: q.prospectName,
          prospectEmail: q.prospectEmail,
          prospectCompany: q.prospectCompany || undefined,
          baseTier: q.baseTier,
          billingPeriod: q.billingPeriod,
          commitmentMonths: q.commitmentMonths ? Number(q.commitmentMonths) : undefined,
          notes: q.notes || undefined,
          customizations: hasCustomizations ? customizations : undefined,
          discounts: discountBody,
        },
      }),
    );
    navigate(`/quotes/${encodeURIComponent(created.quoteId)}`);
  });
  const err = (...names: string[]) => fieldError(save.error, ...names);
  const set = (patch: Partial<typeof q>) => setQ({ ...q, ...patch });
  const setDiscount = (i: number, patch: Partial<DraftDiscount>) => setDiscounts(discounts.map((d, j) => (i === j ? { ...d, ...patch } : d)));
  const setLimit = (i: number, patch: Partial<DraftLimit>) => setLimits(limits.map((l, j) => (i === j ? { ...l, ...patch } : l)));
  const unusedLimit = LIMITS.find((n) => !limits.some((l) => l.name === n));
  const submitLabel = save.busy ? "Saving…" : quote ? "Save changes" : overAuthority ? "Save and submit for approval" : "Save quote";
  return (
    <>
      {!quote && (
        <div class="page-head">
          <h1>New quote</h1>
          <Link href="/quotes">← All quotes</Link>
        </div>
      )}
      <form
        noValidate
        data-testid={quote ? "quote-editor" : "quote-builder"}
        onSubmit={(e) => {
          e.preventDefault();
          void save.go();
        }}
      >
        {quote && (
          <div class="banner warn" role="status" data-testid="edit-notice">
            {wasApproved
              ? `Saving changes clears ${quote.approval?.by ?? "the manager"}'s approval: the quote goes back to draft and is repriced at the tier's current price.`
              : "Saving changes puts the quote back in draft, repriced at the tier's current price."}
            {overAuthority && " It will need approval again before it can be sent."}
          </div>
        )}
        <div class="grid2">
          <section class="card section">
            <h2>Prospect and plan</h2>
            <div class="form-grid">
              <Field label="Prospect name" name="prospectName" error={err("prospectName")}>
                {(id, d) => <input id={id} aria-describedby={d} value={q.prospectName} onInput={(e) => set({ prospectName: e.currentTarget.value })} />}
              </Field>
              <Field label="Prospect email" name="prospectEmail" error={err("prospectEmail")}>
                {(id, d) => <input id={id} type="email" aria-describedby={d} value={q.prospectEmail} onInput={(e) => set({ prospectEmail: e.currentTarget.value })} />}
              </Field>
              <Field label="Company" name="prospectCompany" error={err("prospectCompany")}>
                {(id, d) => <input id={id} aria-describedby={d} value={q.prospectCompany} onInput={(e) => set({ prospectCompany: e.currentTarget.value })} />}
              </Field>
              <Field label="Tier" name="baseTier" error={err("baseTier")}>
                {(id, d) => (
                  <select id={id} aria-describedby={d} value={q.baseTier} onChange={(e) => set({ baseTier: e.currentTarget.value })}>
                    <option value="">Pick a tier</option>
                    {tiers.data?.items
                      .filter((t) => t.status === "active" && t.prices.monthly > 0)
                      .map((t) => (
                        <option key={t.tierId} value={t.tierId}>
                          {t.name}
                        </option>
                      ))}
                  </select>
                )}
              </Field>
              <Field label="Billing period" name="billingPeriod" error={err("billingPeriod")}>
                {(id, d) => (
                  <select id={id} aria-describedby={d} value={q.billingPeriod} onChange={(e) => set({ billingPeriod: e.currentTarget.value as "monthly" })}>
                    <option value="monthly">Monthly</option>
                    <option value="yearly">Yearly</option>
                  </select>
                )}
              </Field>
              <Field label="Commitment (months, optional)" name="commitmentMonths" error={err("commitmentMonths")}>
                {(id, d) => (
                  <input id={id} type="number" min={1} aria-describedby={d} value={q.commitmentMonths} onInput={(e) => set({ commitmentMonths: e.currentTarget.value })} />
                )}
              </Field>
            </div>
            <div class="form-grid">
              <Field
                label="Additional listings"
                name="customizations.additionalListings.quantity"
                hint="Priced by the server's unit price when saved"
                error={err("customizations.additionalListings.quantity", "customizations.additionalListings")}
              >
                {(id, d) => (
                  <input id={id} type="number" min={0} aria-describedby={d} value={q.additionalListings} onInput={(e) => set({ additionalListings: e.currentTarget.value })} />
                )}
              </Field>
              <Field
                label="Additional images"
                name="customizations.additionalImages.quantity"
                hint="Priced by the server's unit price when saved"
                error={err("customizations.additionalImages.quantity", "customizations.additionalImages")}
              >
                {(id, d) => (
                  <input id={id} type="number" min={0} aria-describedby={d} value={q.additionalImages} onInput={(e) => set({ additionalImages: e.currentTarget.value })} />
                )}
              </Field>
            </div>
            <h3>Custom limits</h3>
            <p class="muted">Replace the tier's limits once the quote is accepted; they cost nothing here.</p>
            {limits.map((l, i) => {
              const tierLimit = tier?.limits[l.name];
              return (
                <div class="form-grid" key={i} data-testid={`custom-limit-${i + 1}`}>
                  <Field label={`Custom limit ${i + 1} metric`} name={`customLimits[${i}].name`}>
                    {(id, desc) => (
                      <select id={id} aria-describedby={desc} value={l.name} onChange={(e) => setLimit(i, { name: e.currentTarget.value })}>
                        {LIMITS.filter((n) => n === l.name || !limits.some((o) => o.name === n)).map((n) => (
                          <option key={n} value={n}>
                            {LIMIT_LABEL[n]}
                          </option>
                        ))}
                      </select>
                    )}
                  </Field>
                  <Field
                    label={`Custom limit ${i + 1} value`}
                    name={`customizations.customLimits.${l.name}`}
                    hint={tier ? `Tier: ${tierLimit === null ? "unlimited" : tierLimit === undefined ? "not included" : tierLimit}` : undefined}
                    error={err(`customizations.customLimits.${l.name}`) ?? (l.value && !/^\d+$/.test(l.value.trim()) ? "Not a whole number" : undefined)}
                  >
                    {(id, desc) => (
                      <input id={id} type="number" min={0} aria-describedby={desc} value={l.value} onInput={(e) => setLimit(i, { value: e.currentTarget.value })} />
                    )}
                  </Field>
                  <div class="field">
                    <span>&nbsp;</span>
                    <button type="button" class="secondary small" onClick={() => setLimits(limits.filter((_, j) => j !== i))}>
                      Remove custom limit {i + 1}
                    </button>
                  </div>
                </div>
              );
            })}
            {unusedLimit && (
              <button type="button" class="secondary small" onClick={() => setLimits([...limits, { name: unusedLimit, value: "" }])}>
                Add custom limit
              </button>
            )}
            <Field label="Notes for the prospect" name="notes" error={err("notes")}>
              {(id, d) => <textarea id={id} aria-describedby={d} value={q.notes} onInput={(e) => set({ notes: e.currentTarget.value })} />}
            </Field>
          </section>
          <section class="card section" data-testid="live-pricing" aria-live="polite">
            <h2>Pricing</h2>
            <table>
              <tbody>
                <tr>
                  <td>{tier ? `${tier.name}, ${q.billingPeriod}` : "Base price"}</td>
                  <td class="num">{formatMoney(base, tier?.currency ?? "usd")}</td>
                </tr>
                {discounts.map((_d, i) => {
                  const before = estimate(base, lines.slice(0, i));
                  const after = estimate(base, lines.slice(0, i + 1));
                  return (
                    <tr key={i}>
                      <td>Discount {i + 1}</td>
                      <td class="num">−{formatMoney(before.finalPrice - after.finalPrice)}</td>
                    </tr>
                  );
                })}
                <tr>
                  <th>Total per {q.billingPeriod === "yearly" ? "year" : "month"}</th>
                  <th class="num" data-testid="estimate-total">
                    {formatMoney(est.finalPrice, tier?.currency ?? "usd")}
                  </th>
                </tr>
              </tbody>
            </table>
            <p class="muted">
              Discount {est.discountPercent.toFixed(2)}% · your authority: {cap === null || cap === undefined ? "no limit" : `up to ${cap}%`}. Prices from the
              tier catalog; the saved quote is priced by the server.
            </p>
            {overAuthority && (
              <div class="banner warn" role="status" data-testid="authority-notice">
                {discountOver && `This discount is above your authority (${cap}%). `}
                {limitsOver.length > 0 && `Custom limits above the tier's (${limitsOver.map(limitLabel).join(", ")}) need a sales manager's approval. `}
                The quote will wait for a sales manager's approval before it can be sent.
              </div>
            )}
            <h3>Discounts</h3>
            {discounts.map((d, i) => (
              <div class="form-grid" key={i}>
                <Field label={`Discount ${i + 1} type`} name={`discounts[${i}].type`} error={err(`discounts[${i}].type`)}>
                  {(id, desc) => (
                    <select id={id} aria-describedby={desc} value={d.type} onChange={(e) => setDiscount(i, { type: e.currentTarget.value as "percentage" })}>
                      <option value="percentage">Percent</option>
                      <option value="fixed_amount">Amount (USD)</option>
                    </select>
                  )}
                </Field>
                <Field
                  label={`Discount ${i + 1} value`}
                  name={`discounts[${i}].value`}
                  error={err(`discounts[${i}].value`) ?? (d.value && discountValue(d) === null ? "Not a valid value" : undefined)}
                >
                  {(id, desc) => <input id={id} inputMode="decimal" aria-describedby={desc} value={d.value} onInput={(e) => setDiscount(i, { value: e.currentTarget.value })} />}
                </Field>
                <Field label={`Discount ${i + 1} reason`} name={`discounts[${i}].reason`} error={err(`discounts[${i}].reason`)}>
                  {(id, desc) => <input id={id} aria-describedby={desc} value={d.reason} onInput={(e) => setDiscount(i, { reason: e.currentTarget.value })} />}
                </Field>
                <div class="field">
                  <span>&nbsp;</span>
                  <button type="button" class="secondary small" onClick={() => setDiscounts(discounts.filter((_, j) => j !== i))}>
                    Remove discount {i + 1}
                  </button>
                </div>
              </div>
            ))}
            <button type="button" class="secondary small" onClick={() => setDiscounts([...discounts, { type: "percentage", value: "", reason: "" }])}>
              Add discount
            </button>
          </section>
        </div>
        <ErrorBanner
          error={save.error}
          shownFields={[
            "prospectName",
            "prospectEmail",
            "prospectCompany",
            "baseTier",
            "billingPeriod",
            "commitmentMonths",
            "notes",
            ...limits.map((l) => `customizations.customLimits.${l.name}`),
          ]}
        />
        <div class="form-actions">
          <button type="submit" disabled={save.busy}>
            {submitLabel}
          </button>
          {onCancel && (
            <button type="button" class="secondary" onClick={onCancel}>
              Discard changes
            </button>
          )}
        </div>
      </form>
    </>
  );
}

type PricedUnits = { quantity?: number; pricePerUnit?: number; total?: number };

/** The priced customizations the server stored (docs/quotes.md "Pricing" step 2). */
function customizationLines(q: Quote): { label: string; total: number }[] {
  const c = q.customizations as unknown as {
    additionalListings?: PricedUnits;
    additionalImages?: PricedUnits;
    customFeatures?: { name?: string; price?: number }[];
  };
  const lines: { label: string; total: number }[] = [];
  const units = (label: string, u?: PricedUnits) => {
    if (u?.quantity) lines.push({ label: `${label} × ${u.quantity} (${formatMoney(u.pricePerUnit, q.currency)} each)`, total: u.total ?? 0 });
  };
  units("Additional listings", c.additionalListings);
  units("Additional images", c.additionalImages);
  for (const f of c.customFeatures ?? []) lines.push({ label: f.name ?? "Custom feature", total: f.price ?? 0 });
  return lines;
}

function QuotePage({ quoteId }: { quoteId: string }) {
  const quote = useAsync(() => ok(api.GET("/api/admin/quotes/{quoteId}", { params: { path: { quoteId } } })), [quoteId]);
  const [sent, setSent] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const [edited, setEdited] = useState<string | null>(null);
  const [pdf, setPdf] = useState<string | null>(null);
  useEffect(() => () => {
    if (pdf) URL.revokeObjectURL(pdf);
  }, [pdf]);
  const path = { params: { path: { quoteId } } };
  const act = useAction(async (which: "request" | "approve" | "reject" | "send" | "cancel" | "pdf") => {
    if (which === "pdf") {
      setPdf(await fetchBlobUrl(`/api/admin/quotes/${encodeURIComponent(quoteId)}/pdf`));
      return;
    }
    if (which === "request") await ok(api.POST("/api/admin/quotes/{quoteId}/request-approval", path));
    if (which === "approve") await ok(api.POST("/api/admin/quotes/{quoteId}/approve", { ...path, body: {} }));
    if (which === "reject") await ok(api.POST("/api/admin/quotes/{quoteId}/reject", { ...path, body: { reason: "Rejected in the console" } }));
    if (which === "cancel") await ok(api.POST("/api/admin/quotes/{quoteId}/cancel", { ...path, body: {} }));
    if (which === "send") {
      const r = await ok(api.POST("/api/admin/quotes/{quoteId}/send", path));
      setSent(r.emailSent ? `Sent to ${r.sentTo}.` : `Marked sent; the email to ${r.sentTo} could not be sent (send again for a new link).`);
    }
    setEdited(null);
    quote.reload();
  });
  const q: Quote | undefined = quote.data;
  const me = currentSession()?.subject;
  const approved = q?.approval?.outcome === "approved";
  const mine = q && (q.createdBy === me || q.pricedBy === me);
  return (
    <>
      <div class="page-head">
        <h1>{q ? `Quote ${q.quoteNumber}` : "Quote"}</h1>
        <Link href="/quotes">← All quotes</Link>
      </div>
      <ErrorBanner error={quote.error} />
      {!q && <Loading />}
      {q && editing && (
        <QuoteBuilder
          quote={q}
          onCancel={() => setEditing(false)}
          onSaved={(approvalCleared) => {
            setEditing(false);
            setSent(null);
            setEdited(approvalCleared ? "Saved. The approval was cleared: the quote is back in draft." : "Saved. The quote is in draft.");
            quote.reload();
          }}
        />
      )}
      {q && !editing && (
        <>
          <section class="card section" data-testid="quote-summary">
            <div class="section-head">
              <h2>
                <Badge value={q.status} /> {q.prospectName} {q.prospectCompany ? `· ${q.prospectCompany}` : ""}
              </h2>
              <div class="actions">
                {q.status === "draft" && q.approvalRequired && !approved && (
                  <button type="button" disabled={act.busy} onClick={() => void act.go("request")}>
                    Request approval
                  </button>
                )}
                {q.status === "pending_approval" && isManager() && !mine && (
                  <>
                    <button type="button" disabled={act.busy} onClick={() => void act.go("approve")}>
                      Approve
                    </button>
                    <button type="button" class="secondary" disabled={act.busy} onClick={() => void act.go("reject")}>
                      Reject
                    </button>
                  </>
                )}
                {(q.status === "draft" || q.status === "sent") && (!q.approvalRequired || approved) && (
                  <button type="button" disabled={act.busy} onClick={() => void act.go("send")}>
                    {q.status === "sent" ? "Send again" : "Send to prospect"}
                  </button>
                )}
                {(q.status === "draft" || q.status === "pending_approval") && (
                  <button type="button" class="secondary" disabled={act.busy} onClick={() => setEditing(true)}>
                    Edit quote
                  </button>
                )}
                <button type="button" class="secondary" disabled={act.busy} onClick={() => void act.go("pdf")}>
                  Preview PDF
                </button>
                {["draft", "pending_approval", "sent"].includes(q.status) && (
                  <button type="button" class="secondary" disabled={act.busy} onClick={() => void act.go("cancel")}>
                    Cancel quote
                  </button>
                )}
              </div>
            </div>
            {q.approvalRequired && !approved && (
              <div class="banner warn" data-testid="approval-notice">
                The discount ({q.totalDiscountPercent ?? "—"}%) is above {mine ? "your" : "the author's"} authority: a sales manager (not the author) must approve
                it before it can be sent.
                {q.status === "pending_approval" && " Waiting for approval."}
              </div>
            )}
            {approved && (
              <div class="banner ok" data-testid="approved-notice">
                Approved by {q.approval?.by} on {formatDate(q.approval?.at)}.
              </div>
            )}
            {edited && (
              <div class="banner ok" role="status" data-testid="edited-notice">
                {edited}
              </div>
            )}
            {sent && (
              <div class="banner ok" role="status">
                {sent}
              </div>
            )}
            <ErrorBanner error={act.error} />
            <div class="grid2">
              <div>
                <h3>Lines</h3>
                <table data-testid="quote-lines">
                  <tbody>
                    <tr>
                      <td>
                        {q.baseTierName}, {q.billingPeriod}
                      </td>
                      <td class="num">{formatMoney(q.basePrice, q.currency)}</td>
                    </tr>
                    {customizationLines(q).map((line) => (
                      <tr key={line.label}>
                        <td>{line.label}</td>
                        <td class="num">{formatMoney(line.total, q.currency)}</td>
                      </tr>
                    ))}
                    {Object.entries(storedCustomizations(q).customLimits ?? {}).map(([name, value]) => (
                      <tr key={`limit-${name}`}>
                        <td>
                          Custom limit: {limitLabel(name)} {value}
                        </td>
                        <td class="num">included</td>
                      </tr>
                    ))}
                    {q.discounts.map((d, i) => (
                      <tr key={i}>
                        <td>
                          Discount {d.type === "percentage" ? `${d.value}%` : formatMoney(d.value, q.currency)} — {d.reason}
                        </td>
                        <td class="num">−{formatMoney(d.amount, q.currency)}</td>
                      </tr>
                    ))}
                    <tr>
                      <th>Total per {q.billingPeriod === "yearly" ? "year" : "month"}</th>
                      <th class="num" data-testid="quote-total">
                        {formatMoney(q.finalPrice, q.currency)}
                      </th>
                    </tr>
                  </tbody>
                </table>
              </div>
              <div>
                <h3>Tracking</h3>
                <dl class="props" data-testid="quote-tracking">
                  <dt>Created</dt>
                  <dd>
                    {formatDate(q.createdAt)} by {q.createdBy}
                  </dd>
                  <dt>Sent</dt>
                  <dd>{formatDate(q.sentAt)}</dd>
                  <dt>Viewed</dt>
                  <dd>
                    {q.viewCount} time{q.viewCount === 1 ? "" : "s"}
                    {q.lastViewedAt ? `, last ${formatDate(q.lastViewedAt)}` : ""}
                  </dd>
                  <dt>Accepted</dt>
                  <dd>{formatDate(q.acceptedAt)}</dd>
                  <dt>Valid until</dt>
                  <dd>{formatDate(q.validUntil)}</dd>
                  {q.expiredAt && (
                    <>
                      <dt>Expired</dt>
                      <dd>{formatDate(q.expiredAt)}</dd>
                    </>
                  )}
                  <dt>Prospect email</dt>
                  <dd>{q.prospectEmail}</dd>
                </dl>
              </div>
            </div>
          </section>
          {pdf && (
            <Section title="PDF preview" id="h-pdf">
              <iframe class="pdf" src={pdf} title={`Quote ${q.quoteNumber} PDF`} data-testid="quote-pdf" />
            </Section>
          )}
        </>
      )}
    </>
  );
}
