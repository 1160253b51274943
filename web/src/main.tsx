import { render } from "preact";
import "./styles.css";
import { initAuth } from "./auth";
import { App } from "./app";

const root = document.getElementById("app");
if (root) {
  initAuth().then(
    () => render(<App />, root),
    (e: unknown) => {
      root.textContent = `Sign-in failed: ${e instanceof Error ? e.message : String(e)}`;
    },
  );
}
