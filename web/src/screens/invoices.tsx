// Invoices for staff (docs/billing.md "Invoices for staff"): every partner's invoices
// with filters, the totals per status of the range, CSV, and for managers and admins
// the Stripe actions (resend, mark paid, void, refund). Reps see their own accounts'
// invoices; the API decides what each role sees and may do.
import { useRef, useState } from "preact/hooks";
import { api, idempotencyKey as key, downloadCsv, ok, type Schemas } from "../api/client";
import { formatCount, formatDate, formatMoney, parseMoney } from "../format";
import { Badge, Card, ErrorBanner, Field, Link, Loading, PagedTable, fieldError, useAction, useAsync, usePager } from "../ui";
import { isManager, useTiers } from "../shared";

import { actionsFor, shortId, type Action, type Status } from "../invoices";

type Invoice = Schemas["Invoice"];

const STATUSES: { status: Status; label: string }[] = [
  { status: "paid", label: "Paid" },
  { status: "open", label: "Open" },
  { status: "partially_refunded", label: "Partly refunded" },
  { status: "refunded", label: "Refunded" },
  { status: "void", label: "Void" },
  { status: "uncollectible", label: "Uncollectible" },
  { status: "draft", label: "Draft" },
];

const ACTION_LABEL: Record<Action, string> = {
  send: "Resend",
  pay: "Mark paid",
  void: "Void",
  refund: "Refund",
};

export function InvoicesScreen() {
  const tiers = useTiers();
  const manager = isManager();
  const [status, setStatus] = useState<Status | "">("");
  const [tier, setTier] = useState("");
  const [partnerId, setPartnerId] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [notice, setNotice] = useState("");
  const [refunding, setRefunding] = useState<Invoice | null>(null);
  const query = {
    status: status || undefined,
    tier: tier || undefined,
    partnerId: partnerId.trim() || undefined,
    from: from || undefined,
    to: to || undefined,
  };
  const filterKey = JSON.stringify(query);
  const pager = usePager(filterKey);
  const list = useAsync(
    () => ok(api.GET("/api/admin/invoices", { params: { query: { ...query, limit: 25, cursor: pager.cursor } } })),
    [filterKey, pager.cursor],
  );
  // Totals come with the first page only; keep the last ones while paging on.
  const lastTotals = useRef<Schemas["AdminInvoiceList"]["totals"]>(null);
  if (list.data?.totals) lastTotals.current = list.data.totals;
  const totals = lastTotals.current;

  const csv = useAction(async () => {
    const q = new URLSearchParams({ limit: "100" });
    for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
    await downloadCsv(`/api/admin/invoices?${q.toString()}`, "invoices.csv");
  });
  const act = useAction(async (invoice: Invoice, action: Action, body?: Schemas["RefundRequest"]) => {
    const params = { path: { invoiceId: invoice.invoiceId }, header: { "Idempotency-Key": key() } };
    const done =
      action === "refund"
        ? await ok(api.POST("/api/admin/invoices/{invoiceId}/refund", { params, body: body ?? {} }))
        : action === "send"
          ? await ok(api.POST("/api/admin/invoices/{invoiceId}/send", { params }))
          : action === "pay"
            ? await ok(api.POST("/api/admin/invoices/{invoiceId}/pay", { params }))
            : await ok(api.POST("/api/admin/invoices/{invoiceId}/void", { params }));
    const name = invoice.invoiceNumber ?? invoice.invoiceId;
    setNotice(
      action === "refund"
        ? `Refunded ${formatMoney(done.refunded ?? 0, invoice.currency)} of ${name}.`
        : action === "send"
          ? `Stripe is emailing ${name} again.`
          : action === "pay"
            ? `${name} is marked paid.`
            : `${name} is void.`,
    );
    setRefunding(null);
    list.reload();
  });

  return (
    <>
      <div class="page-head">
        <h1>Invoices</h1>
        <button type="button" class="secondary small" disabled={csv.busy} onClick={() => void csv.go()}>
          {csv.busy ? "Exporting…" : "Export CSV"}
        </button>
      </div>
      <div class="filters">
        <Field label="Status" name="status">
          {(id) => (
            <select id={id} value={status} onChange={(e) => setStatus(e.currentTarget.value as Status | "")}>
              <option value="">All statuses</option>
              {STATUSES.map((s) => (
                <option key={s.status} value={s.status}>
                  {s.label}
                </option>
              ))}
            </select>
          )}
        </Field>
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
        <Field label="Partner id" name="partnerId" error={fieldError(list.error, "partnerId")}>
          {(id, describedBy) => (
            <input
              id={id}
              value={partnerId}
              placeholder="prt_…"
              aria-describedby={describedBy}
              onChange={(e) => setPartnerId(e.currentTarget.value)}
            />
          )}
        </Field>
        <Field label="From" name="from" error={fieldError(list.error, "from")}>
          {(id, describedBy) => (
            <input id={id} type="date" value={from} aria-describedby={describedBy} onChange={(e) => setFrom(e.currentTarget.value)} />
          )}
        </Field>
        <Field label="To" name="to" error={fieldError(list.error, "to")}>
          {(id, describedBy) => (
            <input id={id} type="date" value={to} aria-describedby={describedBy} onChange={(e) => setTo(e.currentTarget.value)} />
          )}
        </Field>
      </div>
      <ErrorBanner error={list.error ?? csv.error ?? act.error} shownFields={["partnerId", "from", "to"]} />
      {notice && (
        <p class="banner ok" role="status" data-testid="invoice-notice">
          {notice}
        </p>
      )}
      {totals && (
        <div class="cards" data-testid="invoice-totals">
          {STATUSES.map((s) => {
            const t = totals[s.status];
            const refunds = s.status.includes("refunded");
            return (
              <Card
                key={s.status}
                testid={`total-${s.status}`}
                title={s.label}
                value={formatCount(t.count)}
                sub={refunds ? `${formatMoney(t.amountRefunded)} refunded` : formatMoney(t.amount)}
              />
            );
          })}
        </div>
      )}
      {refunding && (
        <RefundForm
          invoice={refunding}
          busy={act.busy}
          onCancel={() => setRefunding(null)}
          onRefund={(body) => void act.go(refunding, "refund", body)}
        />
      )}
      <section class="card section">
        {list.data ? (
          <PagedTable
            testid="invoices-table"
            columns={manager ? 8 : 7}
            items={list.data.items}
            empty="No invoices match these filters."
            nextCursor={list.data.nextCursor}
            pager={pager}
            head={
              <>
                <th>Invoice</th>
                <th>Partner</th>
                <th>Tier</th>
                <th>Status</th>
                <th class="num">Amount</th>
                <th class="num">Refunded</th>
                <th>Created</th>
                {manager && <th>Actions</th>}
              </>
            }
            row={(inv) => (
              <tr key={inv.invoiceId} data-invoice={inv.invoiceId}>
                <td>
                  {inv.invoiceUrl ? (
                    <a href={inv.invoiceUrl} target="_blank" rel="noreferrer">
                      {inv.invoiceNumber ?? inv.invoiceId}
                    </a>
                  ) : (
                    (inv.invoiceNumber ?? inv.invoiceId)
                  )}
                </td>
                <td>
                  <span title={inv.partnerId}>
                    <Link href={`/partners/${encodeURIComponent(inv.partnerId)}`}>{shortId(inv.partnerId)}</Link>
                  </span>
                </td>
                <td>{inv.tier}</td>
                <td>
                  <Badge value={inv.billingStatus} />
                </td>
                <td class="num">{formatMoney(inv.amount, inv.currency)}</td>
                <td class="num">{inv.refundedAmount ? formatMoney(inv.refundedAmount, inv.currency) : "—"}</td>
                <td>{formatDate(new Date(inv.stripeCreated * 1000).toISOString())}</td>
                {manager && (
                  <td>
                    <div class="actions">
                    {actionsFor(inv.billingStatus).map((a) => (
                      <button
                        key={a}
                        type="button"
                        class="secondary small"
                        disabled={act.busy}
                        onClick={() => {
                          setNotice("");
                          if (a === "refund") setRefunding(inv);
                          else if (a !== "void" || window.confirm(`Void ${inv.invoiceNumber ?? inv.invoiceId}?`))
                            void act.go(inv, a);
                        }}
                      >
                        {ACTION_LABEL[a]}
                      </button>
                    ))}
                    </div>
                  </td>
                )}
              </tr>
            )}
          />
        ) : (
          <Loading />
        )}
      </section>
    </>
  );
}

function RefundForm(props: {
  invoice: Invoice;
  busy: boolean;
  onCancel: () => void;
  onRefund: (body: Schemas["RefundRequest"]) => void;
}) {
  const { invoice } = props;
  const left = invoice.amountPaid - invoice.refundedAmount;
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const cents = amount.trim() ? parseMoney(amount, invoice.currency) : left;
  const problem =
    cents === null || cents < 1
      ? "Enter an amount like 250.00"
      : cents > left
        ? `At most ${formatMoney(left, invoice.currency)} is left to refund`
        : undefined;
  return (
    <section class="card section" data-testid="refund-form" aria-label="Refund">
      <h2>Refund {invoice.invoiceNumber ?? invoice.invoiceId}</h2>
      <p class="muted">
        Paid {formatMoney(invoice.amountPaid, invoice.currency)}, refunded so far{" "}
        {formatMoney(invoice.refundedAmount, invoice.currency)}. Leave the amount empty to refund all that is left.
      </p>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          if (problem || cents === null) return;
          props.onRefund({ amount: cents, reason: reason.trim() || undefined });
        }}
      >
        <Field label="Amount" name="amount" error={amount.trim() ? problem : undefined}>
          {(id, describedBy) => (
            <input
              id={id}
              inputMode="decimal"
              value={amount}
              placeholder={formatMoney(left, invoice.currency)}
              aria-describedby={describedBy}
              onInput={(e) => setAmount(e.currentTarget.value)}
            />
          )}
        </Field>
        <Field label="Reason" name="reason">
          {(id) => <input id={id} value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />}
        </Field>
        <div class="form-actions">
          <button type="submit" disabled={props.busy || !!problem}>
            {props.busy ? "Refunding…" : "Refund"}
          </button>
          <button type="button" class="secondary" onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
