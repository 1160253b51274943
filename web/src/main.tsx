import { render } from "preact";
import "./styles.css";
import { initAuth } from "./auth";
import { App } from "./app";
import { publicPage } from "./public";

const root = document.getElementById("app");
const open = publicPage(window.location.pathname);
if (root && open) {
  // A public page (the prospect's quote link): no sign-in, no session.
  render(open, root);
} else if (root) {
  initAuth().then(
    () => render(<App />, root),
    (e: unknown) => {
      root.textContent = `Sign-in failed: ${e instanceof Error ? e.message : String(e)}`;
    },
  );
}
