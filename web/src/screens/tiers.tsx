import { useState } from "preact/hooks";
import { api, ok, type Schemas } from "../api/client";
import { formatDate, formatDateTime, formatMoney, parseMoney } from "../format";
import { navigate } from "../router";
import { Badge, ErrorBanner, Field, fieldError, Link, Loading, PagedTable, Section, useAction, useAsync, usePager } from "../ui";
import { LIMITS, LIMIT_LABEL } from "../limits";
import { isManager, useTiers } from "../shared";

/** What the editor reads of a tier (the list's and the single GET's shapes both have it). */
type Tier = Pick<Schemas["Tier"], "tierId" | "name" | "description" | "type" | "segment" | "tierLevel" | "prices" | "commitmentMonths" | "limits" | "version">;

export function TiersScreen({ sub }: { sub: string }) {
  if (sub === "new") return <TierEditor />;
  if (sub) return <TierPage tierId={decodeURIComponent(sub)} />;
  return <Catalog />;
}

function Catalog() {
  const tiers = useTiers();
  const items = [...(tiers.data?.items ?? [])].sort((a, b) => a.sortOrder - b.sortOrder);
  return (
    <>
      <div class="page-head">
        <h1>Tiers</h1>
        {isManager() && (
          <Link href="/tiers/new" class="button">
            New tier
          </Link>
        )}
      </div>
      <ErrorBanner error={tiers.error} />
      <section class="card section">
        {tiers.data ? (
          <div class="table-wrap">
            <table data-testid="tiers-table">
              <thead>
                <tr>
                  <th>Tier</th>
                  <th>Status</th>
                  <th>Type</th>
                  <th class="num">Level</th>
                  <th class="num">Monthly</th>
                  <th class="num">Yearly</th>
                  <th class="num">Features</th>
                  <th class="num">Price version</th>
                </tr>
              </thead>
              <tbody>
                {items.map((t) => (
                  <tr key={t.tierId}>
                    <td>
                      <Link href={`/tiers/${encodeURIComponent(t.tierId)}`}>{t.name}</Link> <span class="muted">{t.tierId}</span>
                    </td>
                    <td>
                      <Badge value={t.status} />
                    </td>
                    <td>{t.type}</td>
                    <td class="num">{t.tierLevel}</td>
                    <td class="num">{formatMoney(t.prices.monthly, t.currency)}</td>
                    <td class="num">{formatMoney(t.prices.yearly, t.currency)}</td>
                    <td class="num">{t.features?.length ?? 0}</td>
                    <td class="num">v{t.priceVersion}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Loading />
        )}
      </section>
    </>
  );
}

interface Draft {
  tierId: string;
  name: string;
  description: string;
  type: Schemas["TierType"];
  segment: string;
  tierLevel: string;
  monthly: string;
  yearly: string;
  commitmentMonths: string;
  limits: Record<string, string>;
}

function toDraft(t?: Tier): Draft {
  return {
    tierId: t?.tierId ?? "",
    name: t?.name ?? "",
    description: t?.description ?? "",
    type: t?.type ?? "individual",
    segment: t?.segment ?? "standard",
    tierLevel: String(t?.tierLevel ?? 1),
    monthly: t ? (t.prices.monthly / 100).toFixed(2) : "",
    yearly: t ? (t.prices.yearly / 100).toFixed(2) : "",
    commitmentMonths: t?.commitmentMonths ? String(t.commitmentMonths) : "",
    limits: Object.fromEntries(LIMITS.map((k) => [k, t?.limits[k] === null || t?.limits[k] === undefined ? "" : String(t.limits[k])])),
  };
}

/** Typed text → the API's body; a price that is not a price is sent as NaN→null so the API names the field. */
function fromDraft(d: Draft) {
  const price = (s: string) => parseMoney(s) ?? -1;
  return {
    name: d.name,
    description: d.description,
    type: d.type,
    segment: d.segment,
    tierLevel: Number(d.tierLevel),
    prices: { monthly: price(d.monthly), yearly: price(d.yearly) },
    commitmentMonths: d.commitmentMonths ? Number(d.commitmentMonths) : undefined,
    limits: Object.fromEntries(LIMITS.map((k) => [k, d.limits[k] === "" ? null : Number(d.limits[k])])),
  };
}

function TierEditor({ tier, onSaved }: { tier?: Tier; onSaved?: () => void }) {
  const [d, setD] = useState<Draft>(() => toDraft(tier));
  const save = useAction(async () => {
    if (tier) {
      await ok(api.PUT("/api/admin/tiers/{tierId}", { params: { path: { tierId: tier.tierId } }, body: { ...fromDraft(d), version: tier.version } }));
      onSaved?.();
    } else {
      const created = await ok(api.POST("/api/admin/tiers", { body: { ...fromDraft(d), tierId: d.tierId, currency: "usd" } }));
      navigate(`/tiers/${encodeURIComponent(created.tierId)}`);
    }
  });
  const err = (...n: string[]) => fieldError(save.error, ...n);
  const set = (patch: Partial<Draft>) => setD({ ...d, ...patch });
  const readOnly = !isManager();
  const shown = ["tierId", "name", "description", "type", "segment", "tierLevel", "prices.monthly", "prices.yearly", "commitmentMonths", ...LIMITS.map((k) => `limits.${k}`)];
  return (
    <form
      class="card section"
      noValidate
      data-testid="tier-editor"
      onSubmit={(e) => {
        e.preventDefault();
        void save.go();
      }}
    >
      <h2>{tier ? "Edit tier" : "New tier"}</h2>
      <fieldset disabled={readOnly} style={{ border: 0, padding: 0, margin: 0 }}>
        <div class="form-grid">
          {!tier && (
            <Field label="Tier id" name="tierId" hint="lowercase letters, digits, - or _" error={err("tierId")}>
              {(id, desc) => <input id={id} aria-describedby={desc} value={d.tierId} onInput={(e) => set({ tierId: e.currentTarget.value })} />}
            </Field>
          )}
          <Field label="Name" name="name" error={err("name")}>
            {(id, desc) => <input id={id} aria-describedby={desc} value={d.name} onInput={(e) => set({ name: e.currentTarget.value })} />}
          </Field>
          <Field label="Type" name="type" error={err("type")}>
            {(id, desc) => (
              <select id={id} aria-describedby={desc} value={d.type} onChange={(e) => set({ type: e.currentTarget.value as Draft["type"] })}>
                <option value="individual">Individual</option>
                <option value="dealer">Dealer</option>
              </select>
            )}
          </Field>
          <Field label="Segment" name="segment" error={err("segment")}>
            {(id, desc) => <input id={id} aria-describedby={desc} value={d.segment} onInput={(e) => set({ segment: e.currentTarget.value })} />}
          </Field>
          <Field label="Level" name="tierLevel" error={err("tierLevel")}>
            {(id, desc) => <input id={id} type="number" aria-describedby={desc} value={d.tierLevel} onInput={(e) => set({ tierLevel: e.currentTarget.value })} />}
          </Field>
          <Field label="Monthly price (USD)" name="prices.monthly" error={err("prices.monthly", "prices")}>
            {(id, desc) => <input id={id} inputMode="decimal" aria-describedby={desc} value={d.monthly} onInput={(e) => set({ monthly: e.currentTarget.value })} />}
          </Field>
          <Field label="Yearly price (USD)" name="prices.yearly" error={err("prices.yearly")}>
            {(id, desc) => <input id={id} inputMode="decimal" aria-describedby={desc} value={d.yearly} onInput={(e) => set({ yearly: e.currentTarget.value })} />}
          </Field>
          <Field label="Commitment (months)" name="commitmentMonths" error={err("commitmentMonths")}>
            {(id, desc) => (
              <input id={id} type="number" aria-describedby={desc} value={d.commitmentMonths} onInput={(e) => set({ commitmentMonths: e.currentTarget.value })} />
            )}
          </Field>
        </div>
        <Field label="Description" name="description" error={err("description")}>
          {(id, desc) => <textarea id={id} aria-describedby={desc} value={d.description} onInput={(e) => set({ description: e.currentTarget.value })} />}
        </Field>
        <h3>Limits (empty: unlimited)</h3>
        <div class="form-grid">
          {LIMITS.map((k) => (
            <Field key={k} label={LIMIT_LABEL[k]} name={`limits.${k}`} error={err(`limits.${k}`)}>
              {(id, desc) => (
                <input
                  id={id}
                  type="number"
                  min={0}
                  aria-describedby={desc}
                  value={d.limits[k]}
                  onInput={(e) => set({ limits: { ...d.limits, [k]: e.currentTarget.value } })}
                />
              )}
            </Field>
          ))}
        </div>
      </fieldset>
      <ErrorBanner error={save.error} shownFields={shown} />
      {!readOnly && (
        <div class="form-actions">
          <button type="submit" disabled={save.busy}>
            {save.busy ? "Saving…" : tier ? "Save changes" : "Create tier"}
          </button>
        </div>
      )}
    </form>
  );
}

function TierPage({ tierId }: { tierId: string }) {
  const tier = useAsync(() => ok(api.GET("/api/admin/tiers/{tierId}", { params: { path: { tierId } } })), [tierId]);
  const retire = useAction(async () => {
    await ok(api.DELETE("/api/admin/tiers/{tierId}", { params: { path: { tierId } } }));
    tier.reload();
  });
  const [confirming, setConfirming] = useState(false);
  const [saved, setSaved] = useState(false);
  const t = tier.data;
  return (
    <>
      <div class="page-head">
        <h1>{t?.name ?? "Tier"}</h1>
        <Link href="/tiers">← All tiers</Link>
      </div>
      <ErrorBanner error={tier.error} />
      {!t && <Loading />}
      {t && (
        <>
          <section class="card section" data-testid="tier-summary">
            <div class="section-head">
              <h2>
                <Badge value={t.status} /> <code>{t.tierId}</code>
              </h2>
              {isManager() && t.status !== "archived" && (
                <div class="actions">
                  {confirming ? (
                    <>
                      <span>Retire this tier? Partners on it keep it; it can no longer be chosen.</span>
                      <button type="button" class="danger" disabled={retire.busy} onClick={() => void retire.go()}>
                        Yes, retire
                      </button>
                      <button type="button" class="secondary" onClick={() => setConfirming(false)}>
                        Keep
                      </button>
                    </>
                  ) : (
                    <button type="button" class="secondary" onClick={() => setConfirming(true)}>
                      Retire tier
                    </button>
                  )}
                </div>
              )}
            </div>
            <ErrorBanner error={retire.error} />
            {saved && (
              <div class="banner ok" role="status">
                Saved.
              </div>
            )}
            <dl class="props">
              <dt>Prices</dt>
              <dd>
                {formatMoney(t.prices.monthly, t.currency)}/month · {formatMoney(t.prices.yearly, t.currency)}/year · price version v{t.priceVersion}
              </dd>
              <dt>Updated</dt>
              <dd>
                {formatDate(t.updatedAt)} {t.updatedBy ? `by ${t.updatedBy}` : ""}
              </dd>
            </dl>
          </section>
          <TierEditor
            key={t.version}
            tier={t}
            onSaved={() => {
              setSaved(true);
              tier.reload();
            }}
          />
          <PriceHistory key={t.priceVersion} tierId={t.tierId} current={t.priceVersion} />
          <Features tierId={t.tierId} features={t.features ?? []} version={t.version} onChanged={tier.reload} />
        </>
      )}
    </>
  );
}

/** The tier's price versions, newest first (remounted when a save adds one). */
function PriceHistory({ tierId, current }: { tierId: string; current: number }) {
  const pager = usePager(tierId);
  const versions = useAsync(
    () => ok(api.GET("/api/admin/tiers/{tierId}/prices", { params: { path: { tierId }, query: { limit: 10, cursor: pager.cursor } } })),
    [tierId, pager.cursor],
  );
  return (
    <Section title="Price history" id="h-price-history">
      <ErrorBanner error={versions.error} />
      {versions.data ? (
        <PagedTable
          testid="tier-price-history"
          columns={5}
          head={
            <>
              <th>Version</th>
              <th class="num">Monthly</th>
              <th class="num">Yearly</th>
              <th>Effective from</th>
              <th>By</th>
            </>
          }
          items={versions.data.items}
          row={(v) => (
            <tr key={v.priceVersion}>
              <td>
                v{v.priceVersion} {v.priceVersion === current && <Badge value="current" />}
              </td>
              <td class="num">{formatMoney(v.prices.monthly, v.currency)}</td>
              <td class="num">{formatMoney(v.prices.yearly, v.currency)}</td>
              <td>{formatDateTime(v.effectiveFrom)}</td>
              <td>{v.createdBy}</td>
            </tr>
          )}
          empty="No price versions."
          nextCursor={versions.data.nextCursor}
          pager={pager}
        />
      ) : (
        <Loading />
      )}
    </Section>
  );
}

function Features({ tierId, features, version, onChanged }: { tierId: string; features: Schemas["Feature"][]; version: number; onChanged: () => void }) {
  const [draft, setDraft] = useState({ featureId: "", name: "", usageLimit: "" });
  const add = useAction(async () => {
    await ok(
      api.POST("/api/admin/tiers/{tierId}/features", {
        params: { path: { tierId } },
        body: {
          featureId: draft.featureId,
          name: draft.name,
          enabled: true,
          usageLimit: draft.usageLimit === "" ? null : Number(draft.usageLimit),
          version,
        },
      }),
    );
    setDraft({ featureId: "", name: "", usageLimit: "" });
    onChanged();
  });
  const toggle = useAction(async (f: Schemas["Feature"]) => {
    await ok(
      api.PUT("/api/admin/tiers/{tierId}/features/{featureId}", {
        params: { path: { tierId, featureId: f.featureId } },
        body: { enabled: !f.enabled, version },
      }),
    );
    onChanged();
  });
  const err = (...n: string[]) => fieldError(add.error, ...n);
  return (
    <Section title={`Features (${features.length})`} id="h-features">
      <div class="table-wrap">
        <table data-testid="tier-features">
          <thead>
            <tr>
              <th>Feature</th>
              <th>Enabled</th>
              <th class="num">Usage limit</th>
              {isManager() && <th />}
            </tr>
          </thead>
          <tbody>
            {features.map((f) => (
              <tr key={f.featureId}>
                <td>
                  {f.name} <span class="muted">{f.featureId}</span>
                </td>
                <td>{f.enabled ? "yes" : "no"}</td>
                <td class="num">{f.usageLimit ?? "—"}</td>
                {isManager() && (
                  <td>
                    <button type="button" class="secondary small" disabled={toggle.busy} onClick={() => void toggle.go(f)}>
                      {f.enabled ? `Disable ${f.name}` : `Enable ${f.name}`}
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ErrorBanner error={toggle.error} />
      {isManager() && (
        <form
          class="filters"
          onSubmit={(e) => {
            e.preventDefault();
            void add.go();
          }}
        >
          <Field label="Feature id" name="featureId" error={err("featureId")}>
            {(id, d) => <input id={id} aria-describedby={d} value={draft.featureId} onInput={(e) => setDraft({ ...draft, featureId: e.currentTarget.value })} />}
          </Field>
          <Field label="Feature name" name="featureName" error={err("name")}>
            {(id, d) => <input id={id} aria-describedby={d} value={draft.name} onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })} />}
          </Field>
          <Field label="Usage limit (empty: none)" name="usageLimit" error={err("usageLimit")}>
            {(id, d) => <input id={id} type="number" min={0} aria-describedby={d} value={draft.usageLimit} onInput={(e) => setDraft({ ...draft, usageLimit: e.currentTarget.value })} />}
          </Field>
          <button type="submit" disabled={add.busy}>
            Add feature
          </button>
        </form>
      )}
      <ErrorBanner error={add.error} shownFields={["featureId", "name", "usageLimit"]} />
    </Section>
  );
}
