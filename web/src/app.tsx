import { useEffect, useState } from "preact/hooks";
import type { JSX } from "preact";
import { currentSession, signIn, signOut, signUp, authMode } from "./auth";
import { onBusy } from "./api/client";
import { homeOf, screenOf, screensFor } from "./nav";
import { navigate, useLocation } from "./router";
import { Link } from "./ui";
import { hasScreen, LazyScreen, PORTAL } from "./lazy";

const ROLE_LABEL: Record<string, string> = {
  sales_rep: "Sales rep",
  sales_manager: "Sales manager",
  admin: "Admin",
  partner: "Partner",
};

function screenFor(path: string): JSX.Element | null {
  const screen = screenOf(path);
  if (!screen || !hasScreen(screen.path)) return null;
  // The part of the path after the screen's base ("" for the screen itself).
  const sub = path === screen.path ? "" : path.slice(screen.path.length + 1);
  // keyed by screen: another screen is a new mount, as when each had its own element
  return <LazyScreen key={screen.path} base={screen.path} label={screen.label} sub={sub} />;
}

export function App() {
  const { path } = useLocation();
  const [busy, setBusy] = useState(false);
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => onBusy(setBusy), []);
  useEffect(() => setMenuOpen(false), [path]);
  const session = currentSession();

  if (!session && (path === PORTAL || path.startsWith(`${PORTAL}/`))) {
    // A partner (or a visitor who chose a plan on the pricing page): their own words,
    // and a way to create the account.
    const next = path + window.location.search;
    const buying = new URLSearchParams(window.location.search).has("plan");
    return (
      <main class="signed-out">
        <div class="card" data-testid="portal-signed-out">
          <h1>{buying ? "One more step" : "Partner portal"}</h1>
          <p>
            {buying
              ? "Sign in to your partner account, or create one, to finish your purchase. Nothing is charged until you pay on the next page."
              : "Sign in to see your subscription, invoices and usage."}
          </p>
          <div class="form-actions">
            <button type="button" onClick={() => void signIn(next)}>
              Sign in
            </button>
            <button type="button" class="secondary" onClick={() => void signUp(next)}>
              Create a partner account
            </button>
          </div>
          <p class="muted">
            <a href="/pricing">See plans and prices</a>
          </p>
        </div>
      </main>
    );
  }
  if (!session) {
    return (
      <main class="signed-out">
        <div class="card">
          <h1>Tierdesk console</h1>
          <p>You are not signed in{authMode() === "dev" ? " (local development: pick a role on the dev sign-in page)" : ""}.</p>
          <button type="button" onClick={() => void signIn(path === "/" ? "/" : path)}>
            Sign in
          </button>
        </div>
      </main>
    );
  }
  if (path === "/" || path === "") {
    navigate(homeOf(session.role), true);
    return null;
  }
  const screens = screensFor(session.role);
  const current = screenOf(path);
  let body: JSX.Element;
  const inPortal = path === PORTAL || path.startsWith(`${PORTAL}/`);
  if (session.role === "partner") {
    // A partner has the portal only; a staff screen's path leads back to it (the
    // address is corrected in place: this render already shows the portal).
    if (!inPortal) window.history.replaceState(null, "", PORTAL);
    const sub = !inPortal || path === PORTAL ? "" : path.slice(PORTAL.length + 1);
    body = <LazyScreen key={PORTAL} base={PORTAL} label="Partner portal" sub={sub} />;
  } else if (inPortal) {
    body = (
      <div class="card notice" data-testid="not-allowed" role="alert">
        <h1>Not allowed</h1>
        <p>The partner portal is for partner accounts; staff see a partner on the Partners screen.</p>
      </div>
    );
  } else if (current && !current.roles.includes(session.role)) {
    body = (
      <div class="card notice" data-testid="not-allowed" role="alert">
        <h1>Not allowed</h1>
        <p>
          {current.label} is not available to the {ROLE_LABEL[session.role]} role. Ask a sales manager or an admin if you
          need it.
        </p>
      </div>
    );
  } else {
    body = screenFor(path) ?? (
      <div class="card notice" data-testid="not-found">
        <h1>Page not found</h1>
        <p>
          There is no console page at <code>{path}</code>.
        </p>
      </div>
    );
  }
  // A partner has one screen, the portal: no navigation to offer.
  const bare = screens.length === 0;
  return (
    <div class={`shell${bare ? " bare" : ""}`}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        {!bare && (
          <button
            type="button"
            class="menu-toggle"
            aria-expanded={menuOpen}
            aria-controls="sidenav"
            onClick={() => setMenuOpen(!menuOpen)}
          >
            ☰ <span class="visually-hidden">Menu</span>
          </button>
        )}
        <Link href={homeOf(session.role)} class="brand">
          Tierdesk
        </Link>
        <div class="who" data-testid="signed-in-role">
          <span class="role-badge">{ROLE_LABEL[session.role]}</span>
          <span class="subject">{session.email ?? session.subject}</span>
        </div>
        <button type="button" class="secondary small" onClick={() => void signOut()}>
          Sign out
        </button>
        <div class={`progress${busy ? " on" : ""}`} role="progressbar" aria-hidden={!busy} aria-label="Loading" />
      </header>
      {!bare && (
        <nav id="sidenav" class={`sidenav${menuOpen ? " open" : ""}`} aria-label="Screens">
          <ul>
            {screens.map((s) => (
              <li key={s.path}>
                <Link href={s.path} aria-current={current?.path === s.path ? "page" : undefined}>
                  {s.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      )}
      <main id="main" class="content" tabIndex={-1}>
        {body}
      </main>
    </div>
  );
}
