import { useState } from "preact/hooks";
import { api, ok, type Schemas } from "../api/client";
import { currentSession } from "../auth";
import { formatCount, formatDate, formatMoney, parseMoney } from "../format";
import { navigate } from "../router";
import { Badge, Card, ErrorBanner, Field, fieldError, Link, Loading, Pager, Section, useAction, useAsync, usePager, PagedTable } from "../ui";
import { useTiers } from "../shared";

type Promotion = Schemas["Promotion"];
type Status = Schemas["PromotionStatus"];
const STATUSES: Status[] = ["pending_approval", "active", "draft", "paused", "completed", "cancelled"];

export function PromotionsScreen({ sub }: { sub: string }) {
  if (sub === "new") return <PromotionForm />;
  if (sub) return <PromotionPage promotionId={decodeURIComponent(sub)} />;
  return <PromotionList />;
}

export function discountText(p: Pick<Promotion, "discountType" | "discountValue" | "currency">): string {
  switch (p.discountType) {
    case "percentage":
      return `${p.discountValue}% off`;
    case "fixed_amount":
      return `${formatMoney(p.discountValue, p.currency)} off`;
    default:
      return `${p.discountValue}-day ${p.discountType === "free_trial" ? "free trial" : "trial extension"}`;
  }
}

function PromotionList() {
  const [status, setStatus] = useState<Status | "">("");
  const pager = usePager(status);
  const list = useAsync(
    () => ok(api.GET("/api/admin/promotions", { params: { query: { limit: 20, cursor: pager.cursor, status: status || undefined } } })),
    [status, pager.cursor],
  );
  return (
    <>
      <div class="page-head">
        <h1>Promotions</h1>
        <Link href="/promotions/new" class="button">
          New promotion
        </Link>
      </div>
      <div class="filters" role="group" aria-label="Status">
        <Field label="Status" name="status">
          {(id) => (
            <select id={id} value={status} onChange={(e) => setStatus(e.currentTarget.value as Status | "")}>
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
              testid="promotions-table"
              head={
                <>
                  <th>Name</th>
                  <th>Status</th>
                  <th>Discount</th>
                  <th>Codes</th>
                  <th class="num">Redemptions</th>
                  <th>Runs</th>
                  <th>Created by</th>
                </>
              }
              columns={7}
              items={list.data.items}
              row={(p) => (
                <tr key={p.promotionId}>
                  <td>
                    <Link href={`/promotions/${encodeURIComponent(p.promotionId)}`}>{p.name}</Link>
                  </td>
                  <td>
                    <Badge value={p.status} />
                  </td>
                  <td>{discountText(p)}</td>
                  <td>{p.promotionCodes.slice(0, 3).join(", ") + (p.promotionCodes.length > 3 ? ` +${p.promotionCodes.length - 3}` : "")}</td>
                  <td class="num">{formatCount(p.redemptionCount)}</td>
                  <td>
                    {formatDate(p.startDate)} – {formatDate(p.endDate)}
                  </td>
                  <td>{p.createdBy}</td>
                </tr>
              )}
              empty="No promotions here."
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

function today(offsetDays = 0): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

interface Draft {
  name: string;
  description: string;
  discountType: Schemas["DiscountType"];
  discountValue: string;
  appliesTo: Schemas["AppliesTo"];
  targetTiers: string[];
  redemptionsPerUser: string;
  maxRedemptions: string;
  stackable: boolean;
  autoExpire: boolean;
  requiresCode: boolean;
  startDate: string;
  endDate: string;
}

/** Checks while typing; the API's answer is the final word and shows beside the same fields. */
export function draftProblems(d: Draft): Record<string, string> {
  const p: Record<string, string> = {};
  if (!d.name.trim()) p.name = "A name is required";
  if (d.discountValue.trim() === "") p.discountValue = "A value is required";
  else if (d.discountType === "fixed_amount" && parseMoney(d.discountValue) === null) p.discountValue = "An amount like 25 or 25.50";
  else if (d.discountType !== "fixed_amount" && !/^\d+(\.\d{1,2})?$/.test(d.discountValue.trim())) p.discountValue = "A number";
  if (d.startDate && d.endDate && d.endDate < d.startDate) p.endDate = "Must not be before the start";
  return p;
}

function draftOf(p?: Promotion): Draft {
  if (!p) {
    return {
      name: "",
      description: "",
      discountType: "percentage",
      discountValue: "",
      appliesTo: "both",
      targetTiers: [],
      redemptionsPerUser: "1",
      maxRedemptions: "",
      stackable: false,
      autoExpire: true,
      requiresCode: true,
      startDate: today(),
      endDate: today(30),
    };
  }
  return {
    name: p.name,
    description: p.description,
    discountType: p.discountType,
    discountValue: p.discountType === "fixed_amount" ? (p.discountValue / 100).toFixed(2) : String(p.discountValue),
    appliesTo: p.appliesTo,
    targetTiers: p.targetTiers,
    redemptionsPerUser: String(p.redemptionsPerUser),
    maxRedemptions: p.maxRedemptions ? String(p.maxRedemptions) : "",
    stackable: p.stackable,
    autoExpire: p.autoExpire,
    requiresCode: p.requiresCode,
    startDate: p.startDate,
    endDate: p.endDate,
  };
}

/** Create (no `promotion`) or edit a draft (`promotion`, saved with its version). */
function PromotionForm({ promotion, onSaved }: { promotion?: Promotion; onSaved?: () => void }) {
  const tiers = useTiers();
  const [d, setD] = useState<Draft>(() => draftOf(promotion));
  const [touched, setTouched] = useState(false);
  const live = touched ? draftProblems(d) : {};
  const create = useAction(async () => {
    setTouched(true);
    if (Object.keys(draftProblems(d)).length) return;
    const value =
      d.discountType === "fixed_amount" ? (parseMoney(d.discountValue) ?? 0) : Number(d.discountValue.trim());
    if (promotion) {
      await ok(
        api.PUT("/api/admin/promotions/{promotionId}", {
          params: { path: { promotionId: promotion.promotionId } },
          body: {
            version: promotion.version,
            name: d.name,
            description: d.description,
            discountType: d.discountType,
            discountValue: value,
            appliesTo: d.appliesTo,
            targetTiers: d.targetTiers,
            redemptionsPerUser: Number(d.redemptionsPerUser),
            maxRedemptions: d.maxRedemptions ? Number(d.maxRedemptions) : null,
            stackable: d.stackable,
            startDate: d.startDate,
            endDate: d.endDate,
            autoExpire: d.autoExpire,
            requiresCode: d.requiresCode,
          },
        }),
      );
      onSaved?.();
      return;
    }
    const created = await ok(
      api.POST("/api/admin/promotions", {
        body: {
          name: d.name,
          description: d.description,
          discountType: d.discountType,
          discountValue: value,
          appliesTo: d.appliesTo,
          currency: "usd",
          targetTiers: d.targetTiers,
          redemptionsPerUser: Number(d.redemptionsPerUser),
          maxRedemptions: d.maxRedemptions ? Number(d.maxRedemptions) : undefined,
          stackable: d.stackable,
          startDate: d.startDate,
          endDate: d.endDate,
          autoExpire: d.autoExpire,
          requiresCode: d.requiresCode,
        },
      }),
    );
    navigate(`/promotions/${encodeURIComponent(created.promotionId)}`);
  });
  const err = (name: string) => live[name] ?? fieldError(create.error, name);
  const set = (patch: Partial<Draft>) => setD({ ...d, ...patch });
  const valueLabel =
    d.discountType === "percentage" ? "Discount (%)" : d.discountType === "fixed_amount" ? "Discount (USD)" : "Trial days";
  return (
    <>
      {!promotion && (
        <div class="page-head">
          <h1>New promotion</h1>
          <Link href="/promotions">← All promotions</Link>
        </div>
      )}
      <form
        class="card section"
        noValidate
        data-testid="promotion-form"
        onSubmit={(e) => {
          e.preventDefault();
          void create.go();
        }}
      >
        <div class="form-grid">
          <Field label="Name" name="name" error={err("name")}>
            {(id, desc) => <input id={id} aria-describedby={desc} value={d.name} onInput={(e) => set({ name: e.currentTarget.value })} />}
          </Field>
          <Field label="Description" name="description" error={err("description")}>
            {(id, desc) => <input id={id} aria-describedby={desc} value={d.description} onInput={(e) => set({ description: e.currentTarget.value })} />}
          </Field>
          <Field label="Discount type" name="discountType" error={err("discountType")}>
            {(id, desc) => (
              <select id={id} aria-describedby={desc} value={d.discountType} onChange={(e) => set({ discountType: e.currentTarget.value as Draft["discountType"] })}>
                <option value="percentage">Percentage</option>
                <option value="fixed_amount">Fixed amount</option>
                <option value="free_trial">Free trial</option>
                <option value="extended_trial">Extended trial</option>
              </select>
            )}
          </Field>
          <Field label={valueLabel} name="discountValue" error={err("discountValue")}>
            {(id, desc) => (
              <input id={id} inputMode="decimal" aria-describedby={desc} value={d.discountValue} onInput={(e) => set({ discountValue: e.currentTarget.value })} />
            )}
          </Field>
          <Field label="Applies to" name="appliesTo" error={err("appliesTo")}>
            {(id, desc) => (
              <select id={id} aria-describedby={desc} value={d.appliesTo} onChange={(e) => set({ appliesTo: e.currentTarget.value as Draft["appliesTo"] })}>
                <option value="both">Monthly and yearly</option>
                <option value="monthly">Monthly</option>
                <option value="yearly">Yearly</option>
                <option value="first_month">First month</option>
              </select>
            )}
          </Field>
          <Field label="Start date" name="startDate" error={err("startDate")}>
            {(id, desc) => <input id={id} type="date" aria-describedby={desc} value={d.startDate} onInput={(e) => set({ startDate: e.currentTarget.value })} />}
          </Field>
          <Field label="End date" name="endDate" error={err("endDate")}>
            {(id, desc) => <input id={id} type="date" aria-describedby={desc} value={d.endDate} onInput={(e) => set({ endDate: e.currentTarget.value })} />}
          </Field>
          <Field label="Redemptions per customer" name="redemptionsPerUser" error={err("redemptionsPerUser")}>
            {(id, desc) => (
              <input id={id} type="number" min={1} aria-describedby={desc} value={d.redemptionsPerUser} onInput={(e) => set({ redemptionsPerUser: e.currentTarget.value })} />
            )}
          </Field>
          <Field label="Maximum redemptions (optional)" name="maxRedemptions" error={err("maxRedemptions")}>
            {(id, desc) => (
              <input id={id} type="number" min={1} aria-describedby={desc} value={d.maxRedemptions} onInput={(e) => set({ maxRedemptions: e.currentTarget.value })} />
            )}
          </Field>
        </div>
        <fieldset class="field" data-field="targetTiers">
          <legend>Target tiers (none: every tier)</legend>
          <div class="actions">
            {tiers.data?.items
              .filter((t) => t.status === "active")
              .map((t) => (
                <label key={t.tierId} class="checkbox">
                  <input
                    type="checkbox"
                    checked={d.targetTiers.includes(t.tierId)}
                    onChange={(e) =>
                      set({ targetTiers: e.currentTarget.checked ? [...d.targetTiers, t.tierId] : d.targetTiers.filter((x) => x !== t.tierId) })
                    }
                  />
                  {t.name}
                </label>
              ))}
          </div>
          {err("targetTiers") && <small class="field-error">{err("targetTiers")}</small>}
        </fieldset>
        <div class="actions">
          <label class="checkbox">
            <input type="checkbox" checked={d.requiresCode} onChange={(e) => set({ requiresCode: e.currentTarget.checked })} /> Needs a code
          </label>
          <label class="checkbox">
            <input type="checkbox" checked={d.stackable} onChange={(e) => set({ stackable: e.currentTarget.checked })} /> Stackable
          </label>
          <label class="checkbox">
            <input type="checkbox" checked={d.autoExpire} onChange={(e) => set({ autoExpire: e.currentTarget.checked })} /> Ends by itself
          </label>
        </div>
        <ErrorBanner
          error={create.error}
          shownFields={["name", "description", "discountType", "discountValue", "appliesTo", "startDate", "endDate", "redemptionsPerUser", "maxRedemptions", "targetTiers"]}
        />
        <div class="form-actions">
          <button type="submit" disabled={create.busy}>
            {create.busy ? "Saving…" : promotion ? "Save draft" : "Create draft"}
          </button>
        </div>
      </form>
    </>
  );
}

function PromotionPage({ promotionId }: { promotionId: string }) {
  const promo = useAsync(() => ok(api.GET("/api/admin/promotions/{promotionId}", { params: { path: { promotionId } } })), [promotionId]);
  const me = currentSession()?.subject;
  const path = { params: { path: { promotionId } } };
  const step = useAction(async (which: "submit" | "approve" | "reject" | "pause" | "resume" | "cancel") => {
    switch (which) {
      case "submit":
        await ok(api.POST("/api/admin/promotions/{promotionId}/submit", path));
        break;
      case "approve":
        await ok(api.POST("/api/admin/promotions/{promotionId}/approve", path));
        break;
      case "reject":
        await ok(api.POST("/api/admin/promotions/{promotionId}/reject", { ...path, body: { reason: "Rejected in the console" } }));
        break;
      case "pause":
        await ok(api.POST("/api/admin/promotions/{promotionId}/pause", path));
        break;
      case "resume":
        await ok(api.POST("/api/admin/promotions/{promotionId}/resume", path));
        break;
      case "cancel":
        await ok(api.POST("/api/admin/promotions/{promotionId}/cancel", { ...path, body: { reason: "Cancelled in the console" } }));
        break;
    }
    promo.reload();
  });
  const p = promo.data;
  const [editing, setEditing] = useState(false);
  return (
    <>
      <div class="page-head">
        <h1>{p?.name ?? "Promotion"}</h1>
        <Link href="/promotions">← All promotions</Link>
      </div>
      <ErrorBanner error={promo.error} />
      {!p && <Loading />}
      {p && (
        <>
          <section class="card section" data-testid="promotion-summary">
            <div class="section-head">
              <h2>
                <Badge value={p.status} /> {discountText(p)}
              </h2>
              <div class="actions">
                {p.status === "draft" && (
                  <button type="button" class="secondary" aria-expanded={editing} onClick={() => setEditing(!editing)}>
                    {editing ? "Close editor" : "Edit"}
                  </button>
                )}
                {p.status === "draft" && (
                  <button
                    type="button"
                    disabled={step.busy || (p.requiresCode && p.promotionCodes.length === 0)}
                    title={p.requiresCode && p.promotionCodes.length === 0 ? "Add codes first" : undefined}
                    onClick={() => void step.go("submit")}
                  >
                    Submit for approval
                  </button>
                )}
                {p.status === "pending_approval" && p.createdBy !== me && (
                  <>
                    <button type="button" disabled={step.busy} onClick={() => void step.go("approve")}>
                      Approve
                    </button>
                    <button type="button" class="secondary" disabled={step.busy} onClick={() => void step.go("reject")}>
                      Reject
                    </button>
                  </>
                )}
                {p.status === "active" && (
                  <button type="button" class="secondary" disabled={step.busy} onClick={() => void step.go("pause")}>
                    Pause
                  </button>
                )}
                {p.status === "paused" && (
                  <button type="button" disabled={step.busy} onClick={() => void step.go("resume")}>
                    Resume
                  </button>
                )}
                {!["completed", "cancelled"].includes(p.status) && (
                  <button type="button" class="secondary" disabled={step.busy} onClick={() => void step.go("cancel")}>
                    Cancel promotion
                  </button>
                )}
              </div>
            </div>
            {p.status === "draft" && p.requiresCode && p.promotionCodes.length === 0 && (
              <div class="banner info">This promotion needs a code: generate or add codes below, then submit it.</div>
            )}
            {p.status === "pending_approval" && p.createdBy === me && (
              <div class="banner warn" data-testid="own-approval">
                Waiting for approval by another manager: you created this promotion, so you cannot approve it.
              </div>
            )}
            <ErrorBanner error={step.error} />
            <dl class="props">
              <dt>Description</dt>
              <dd>{p.description || "—"}</dd>
              <dt>Runs</dt>
              <dd>
                {formatDate(p.startDate)} – {formatDate(p.endDate)}
              </dd>
              <dt>Applies to</dt>
              <dd>{p.appliesTo.replace("_", " ")}</dd>
              <dt>Tiers</dt>
              <dd>{p.targetTiers.length ? p.targetTiers.join(", ") : "every tier"}</dd>
              <dt>Created by</dt>
              <dd>{p.createdBy}</dd>
              {p.approvedBy && (
                <>
                  <dt>Approved by</dt>
                  <dd data-testid="approved-by">{p.approvedBy}</dd>
                </>
              )}
              {p.rejectionReason && (
                <>
                  <dt>Rejected</dt>
                  <dd>{p.rejectionReason}</dd>
                </>
              )}
            </dl>
          </section>
          {editing && p.status === "draft" && (
            <PromotionForm
              key={p.version}
              promotion={p}
              onSaved={() => {
                setEditing(false);
                promo.reload();
              }}
            />
          )}
          <div class="cards section">
            <Card title="Redemptions" value={formatCount(p.redemptionCount)} sub={`${formatCount(p.uniqueUsers)} customers`} />
            <Card title="Discount given" value={formatMoney(p.totalDiscount, p.currency)} />
            <Card title="Revenue" value={formatMoney(p.totalRevenue, p.currency)} />
            <Card title="Validations" value={formatCount(p.validationCount)} sub={`${(p.conversionRate * 100).toFixed(0)}% converted`} />
          </div>
          <Codes promotion={p} onChanged={promo.reload} />
          <Redemptions promotionId={p.promotionId} />
        </>
      )}
    </>
  );
}

function Codes({ promotion, onChanged }: { promotion: Promotion; onChanged: () => void }) {
  const [form, setForm] = useState({ count: "5", prefix: "", length: "8" });
  const [copied, setCopied] = useState<string | null>(null);
  const gen = useAction(async () => {
    await ok(
      api.POST("/api/admin/promotions/{promotionId}/codes", {
        params: { path: { promotionId: promotion.promotionId } },
        body: { count: Number(form.count), prefix: form.prefix, length: Number(form.length) },
      }),
    );
    onChanged();
  });
  const closed = promotion.status === "completed" || promotion.status === "cancelled";
  return (
    <Section title={`Codes (${promotion.promotionCodes.length})`} id="h-codes">
      {!closed && (
        <form
          class="filters"
          onSubmit={(e) => {
            e.preventDefault();
            void gen.go();
          }}
        >
          <Field label="How many" name="count" error={fieldError(gen.error, "count")}>
            {(id, d) => <input id={id} type="number" min={1} max={90} aria-describedby={d} value={form.count} onInput={(e) => setForm({ ...form, count: e.currentTarget.value })} />}
          </Field>
          <Field label="Prefix" name="prefix" error={fieldError(gen.error, "prefix")}>
            {(id, d) => <input id={id} aria-describedby={d} value={form.prefix} onInput={(e) => setForm({ ...form, prefix: e.currentTarget.value.toUpperCase() })} />}
          </Field>
          <Field label="Length" name="length" error={fieldError(gen.error, "length")}>
            {(id, d) => <input id={id} type="number" min={4} max={32} aria-describedby={d} value={form.length} onInput={(e) => setForm({ ...form, length: e.currentTarget.value })} />}
          </Field>
          <button type="submit" disabled={gen.busy}>
            {gen.busy ? "Generating…" : "Generate codes"}
          </button>
        </form>
      )}
      <ErrorBanner error={gen.error} shownFields={["count", "prefix", "length"]} />
      <ul class="actions" data-testid="codes" aria-label="Codes">
        {promotion.promotionCodes.map((c) => (
          <li key={c} class="badge">
            <code>{c}</code>{" "}
            <button
              type="button"
              class="secondary small"
              aria-label={`Copy ${c}`}
              onClick={() => {
                void navigator.clipboard?.writeText(c).catch(() => undefined);
                setCopied(c);
              }}
            >
              {copied === c ? "Copied" : "Copy"}
            </button>
          </li>
        ))}
        {promotion.promotionCodes.length === 0 && <li class="muted">No codes yet.</li>}
      </ul>
    </Section>
  );
}

function Redemptions({ promotionId }: { promotionId: string }) {
  const pager = usePager(promotionId);
  const list = useAsync(
    () => ok(api.GET("/api/admin/promotions/{promotionId}/redemptions", { params: { path: { promotionId }, query: { limit: 20, cursor: pager.cursor } } })),
    [promotionId, pager.cursor],
  );
  return (
    <Section title="Redemptions" id="h-redemptions">
      <ErrorBanner error={list.error} />
      {list.data && list.data.items.length === 0 && <p class="muted">Not redeemed yet.</p>}
      {list.data && list.data.items.length > 0 && (
        <>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>When</th>
                  <th>Partner</th>
                  <th>Code</th>
                  <th>Tier</th>
                  <th class="num">List price</th>
                  <th class="num">Discount</th>
                  <th class="num">Paid</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((r) => (
                  <tr key={r.redemptionId}>
                    <td>{formatDate(r.redeemedAt)}</td>
                    <td>
                      <Link href={`/partners/${encodeURIComponent(r.userId)}`}>{r.userId}</Link>
                    </td>
                    <td>{r.code ?? "—"}</td>
                    <td>{r.tierAfter}</td>
                    <td class="num">{formatMoney(r.originalPrice, r.currency)}</td>
                    <td class="num">{formatMoney(r.discountAmount, r.currency)}</td>
                    <td class="num">{formatMoney(r.finalPrice, r.currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={pager.page} nextCursor={list.data.nextCursor} onNext={() => pager.next(list.data?.nextCursor)} onPrev={pager.prev} />
        </>
      )}
    </Section>
  );
}
