import { render } from "preact";
import "./styles.css";
import { currentSession, initAuth, peekRole } from "./auth";
import { App } from "./app";
import { loadScreen, startFirstCalls } from "./lazy";
import { homeOf, screenOf } from "./nav";
import { publicPage } from "./public";

/**
 * The staff screen this load will show, when the tab already holds a session whose
 * role may use it (a hint; the App decides what to show once initAuth has run).
 */
function screenAhead(): string | undefined {
  let role: ReturnType<typeof peekRole>;
  try {
    role = peekRole(window.sessionStorage, window.location.pathname === "/auth/dev" ? window.location.hash : "");
  } catch {
    return undefined; // storage blocked: the App loads the screen after sign-in
  }
  if (!role || role === "partner") return undefined;
  let path = window.location.pathname;
  if (path === "/auth/dev") path = new URLSearchParams(window.location.hash.slice(1)).get("next") ?? "/";
  if (path === "/" || path === "") path = homeOf(role);
  const screen = screenOf(path);
  return screen && screen.roles.includes(role) ? screen.path : undefined;
}

const root = document.getElementById("app");
const open = publicPage(window.location.pathname);
if (root && open) {
  // A public page (the prospect's quote link): no sign-in, no session.
  render(open, root);
} else if (root) {
  // The screen's chunk loads beside /config.json, and its first calls go out as soon
  // as the session is known, beside the chunk rather than after it. The App loads
  // the chunk itself if this did not.
  const ahead = screenAhead();
  if (ahead) loadScreen(ahead).catch(() => undefined);
  initAuth().then(
    () => {
      if (ahead && currentSession()) startFirstCalls(ahead);
      render(<App />, root);
    },
    (e: unknown) => {
      root.textContent = `Sign-in failed: ${e instanceof Error ? e.message : String(e)}`;
    },
  );
}
