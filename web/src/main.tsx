import { render } from "preact";
import "./styles.css";
import { initAuth, peekRole } from "./auth";
import { App } from "./app";
import { loadScreen } from "./lazy";
import { homeOf, screenOf } from "./nav";
import { publicPage } from "./public";

/**
 * The screen's chunk starts loading beside /config.json instead of after it, when the
 * tab already holds a session whose role may use the screen (a hint; the App decides
 * what to show once initAuth has run, and loads the chunk itself if this did not).
 */
function preloadScreen(): void {
  let role: ReturnType<typeof peekRole>;
  try {
    role = peekRole(window.sessionStorage, window.location.pathname === "/auth/dev" ? window.location.hash : "");
  } catch {
    return; // storage blocked: the App loads the screen after sign-in
  }
  if (!role || role === "partner") return;
  let path = window.location.pathname;
  if (path === "/auth/dev") path = new URLSearchParams(window.location.hash.slice(1)).get("next") ?? "/";
  if (path === "/" || path === "") path = homeOf(role);
  const screen = screenOf(path);
  if (screen && screen.roles.includes(role)) loadScreen(screen.path).catch(() => undefined);
}

const root = document.getElementById("app");
const open = publicPage(window.location.pathname);
if (root && open) {
  // A public page (the prospect's quote link): no sign-in, no session.
  render(open, root);
} else if (root) {
  preloadScreen();
  initAuth().then(
    () => render(<App />, root),
    (e: unknown) => {
      root.textContent = `Sign-in failed: ${e instanceof Error ? e.message : String(e)}`;
    },
  );
}
