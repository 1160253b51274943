// A screen's first API calls, started as soon as the session is known instead of
// after the screen's code has arrived and rendered once (render-as-you-fetch).
// main.tsx starts them beside the screen's chunk; the screen claims each answer once
// on its first render. A claim that finds nothing, an answer started for another
// session, or one older than FRESH_MS, makes the call anew, so the screen never
// shows data it did not ask for.
import { currentSession } from "../auth";

const FRESH_MS = 5_000;

type Started = { session: string; at: number; answer: Promise<unknown> };
const started = new Map<string, Started>();

function sessionKey(): string {
  return currentSession()?.token ?? "";
}

/** Starts `load` now, to be claimed under `key` by the screen's first render. */
export function startEarly<T>(key: string, load: () => Promise<T>): void {
  if (started.has(key)) return;
  const answer = load();
  // A failure is the claimant's to show; unclaimed, it must not be an unhandled rejection.
  answer.catch(() => undefined);
  started.set(key, { session: sessionKey(), at: Date.now(), answer });
}

/** The answer started early under `key`, at most once; otherwise `load()` now. */
export function claim<T>(key: string, load: () => Promise<T>, now = Date.now()): Promise<T> {
  const early = started.get(key);
  started.delete(key);
  if (early && early.session === sessionKey() && now - early.at < FRESH_MS) return early.answer as Promise<T>;
  return load();
}
