// Each screen is its own chunk, fetched by dynamic import() the first time it is
// shown, so a screen loads only its own code (Chart.js comes with the two screens
// that chart, Analytics, Experiments and Forecast). Vite emits the chunks and a preload helper
// that fetches a chunk's shared dependencies beside it; both are files on 'self', so
// the console still runs under `script-src 'self'; style-src 'self'`.
import type { FunctionComponent } from "preact";
import { useEffect, useState } from "preact/hooks";
import { startAnalyticsCalls } from "./screens/analytics-calls";
import { Loading } from "./ui";

export type ScreenComponent = FunctionComponent<{ sub: string }>;

export const PORTAL = "/partner-portal";

const LOADERS: Record<string, () => Promise<ScreenComponent>> = {
  "/analytics": () => import("./screens/analytics").then((m) => m.AnalyticsScreen),
  "/tiers": () => import("./screens/tiers").then((m) => m.TiersScreen),
  "/partners": () => import("./screens/partners").then((m) => m.PartnersScreen),
  "/subscriptions": () => import("./screens/subscriptions").then((m) => m.SubscriptionsScreen),
  "/invoices": () => import("./screens/invoices").then((m) => m.InvoicesScreen),
  "/journeys": () => import("./screens/journeys").then((m) => m.JourneysScreen),
  "/promotions": () => import("./screens/promotions").then((m) => m.PromotionsScreen),
  "/quotes": () => import("./screens/quotes").then((m) => m.QuotesScreen),
  "/experiments": () => import("./screens/experiments").then((m) => m.ExperimentsScreen),
  "/forecast": () => import("./screens/forecast").then((m) => m.ForecastScreen),
  // The partner's own portal; never offered to staff (app.tsx routes the partner role here).
  [PORTAL]: () => import("./screens/portal").then((m) => m.PortalScreen),
};

// Screens whose first render's calls start beside their chunk (api/early.ts); the
// starters live in the main bundle, so they do not wait for the chunk either.
const FIRST_CALLS: Record<string, (now: Date) => void> = {
  "/analytics": startAnalyticsCalls,
};

/** Starts the first render's calls of the screen at `base`, when it has any (once per page load, from main.tsx). */
export function startFirstCalls(base: string): void {
  FIRST_CALLS[base]?.(new Date());
}

const loaded = new Map<string, ScreenComponent>();
const pending = new Map<string, Promise<ScreenComponent>>();

export function hasScreen(base: string): boolean {
  return base in LOADERS;
}

/** Starts (or joins) the load of a screen's chunk; a failed load may be tried again. */
export function loadScreen(base: string): Promise<ScreenComponent> {
  const loader = LOADERS[base];
  if (!loader) return Promise.reject(new Error(`no screen at ${base}`));
  let p = pending.get(base);
  if (!p) {
    p = loader().then(
      (component) => {
        loaded.set(base, component);
        return component;
      },
      (e: unknown) => {
        pending.delete(base);
        throw e;
      },
    );
    pending.set(base, p);
  }
  return p;
}

/** The screen at `base`: at once when its chunk is here, else a loading state until it is. */
export function LazyScreen({ base, label, sub }: { base: string; label: string; sub: string }) {
  const [, setLoaded] = useState(0);
  const [failed, setFailed] = useState<unknown>(undefined);
  const Screen = loaded.get(base);
  useEffect(() => {
    if (Screen) return;
    let live = true;
    loadScreen(base).then(
      () => live && setLoaded((n) => n + 1),
      (e: unknown) => live && setFailed(e ?? "load failed"),
    );
    return () => {
      live = false;
    };
  }, [base, Screen]);
  if (Screen) return <Screen sub={sub} />;
  if (failed) {
    // Usually a new deploy replaced the chunk names this page knows: a reload gets the new ones.
    return (
      <div class="card notice" role="alert" data-testid="screen-load-failed">
        <h1>{label}</h1>
        <p>The {label} screen could not be loaded ({failed instanceof Error ? failed.message : String(failed)}).</p>
        <button type="button" onClick={() => window.location.reload()}>
          Reload the page
        </button>
      </div>
    );
  }
  return (
    <div class="card notice" data-testid="screen-loading">
      <h1>{label}</h1>
      <Loading what={`Loading ${label}`} />
    </div>
  );
}
