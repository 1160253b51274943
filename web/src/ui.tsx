// Shared pieces of every screen: fields with their API error beside them, error
// banners, cards, tables, cursor paging and the async-load hook.
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api/client";
import { signIn } from "./auth";
import { linkClick } from "./router";

export function Link(props: { href: string; children: ComponentChildren; class?: string; "aria-current"?: "page" }) {
  return (
    <a href={props.href} class={props.class} aria-current={props["aria-current"]} onClick={(e) => linkClick(e, props.href)}>
      {props.children}
    </a>
  );
}

let fieldSeq = 0;

/** A labelled input; `error` (from the API's details.fields) shows beside it. */
export function Field(props: {
  label: string;
  error?: string;
  hint?: string;
  name?: string;
  children: (id: string, describedBy: string | undefined) => JSX.Element;
}) {
  const id = useRef(`f${++fieldSeq}`).current;
  const errId = `${id}-err`;
  return (
    <div class={`field${props.error ? " has-error" : ""}`} data-field={props.name}>
      <label for={id}>{props.label}</label>
      {props.children(id, props.error ? errId : undefined)}
      {props.hint && !props.error && <small class="hint">{props.hint}</small>}
      {props.error && (
        <small class="field-error" id={errId} role="alert">
          {props.error}
        </small>
      )}
    </div>
  );
}

/** An error from the API (or anything else) as a message; field errors are listed too. */
export function ErrorBanner({ error, shownFields = [] }: { error: unknown; shownFields?: string[] }) {
  if (!error) return null;
  const isApi = error instanceof ApiError;
  if (isApi && error.status === 401) {
    return (
      <div class="banner warn" role="alert">
        Your session has ended.{" "}
        <button type="button" class="small" onClick={() => void signIn(window.location.pathname)}>
          Sign in again
        </button>
      </div>
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  const otherFields = isApi ? Object.entries(error.fields).filter(([k]) => !shownFields.includes(k)) : [];
  return (
    <div class="banner error" role="alert">
      <strong>{isApi && error.status === 403 ? "Not allowed" : "Error"}</strong> {message}
      {isApi && <code class="code">{error.code}</code>}
      {otherFields.length > 0 && (
        <ul>
          {otherFields.map(([k, v]) => (
            <li key={k}>
              <code>{k}</code>: {v}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function fieldError(error: unknown, ...names: string[]): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  for (const n of names) if (error.fields[n]) return error.fields[n];
  return undefined;
}

export function Card(props: { title: string; value: ComponentChildren; sub?: ComponentChildren; testid?: string }) {
  return (
    <div class="card stat" data-testid={props.testid}>
      <div class="stat-title">{props.title}</div>
      <div class="stat-value">{props.value}</div>
      {props.sub && <div class="stat-sub">{props.sub}</div>}
    </div>
  );
}

export function Section(props: { title: string; actions?: ComponentChildren; children: ComponentChildren; id?: string }) {
  return (
    <section class="card section" aria-labelledby={props.id}>
      <div class="section-head">
        <h2 id={props.id}>{props.title}</h2>
        {props.actions && <div class="actions">{props.actions}</div>}
      </div>
      {props.children}
    </section>
  );
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <p class="loading" aria-busy="true">
      {what}…
    </p>
  );
}

export function Badge({ value }: { value: string | undefined | null }) {
  if (!value) return null;
  return <span class={`badge badge-${value.replace(/[^a-z0-9_]/gi, "")}`}>{value.replace(/_/g, " ")}</span>;
}

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change; keeps the last data while reloading. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Cursor paging: the cursors of the pages seen so far, so "Previous" works too. */
export function usePager(resetKey: string) {
  const [stack, setStack] = useState<(string | undefined)[]>([undefined]);
  useEffect(() => setStack([undefined]), [resetKey]);
  const cursor = stack[stack.length - 1];
  return {
    cursor,
    page: stack.length,
    next: (c: string | null | undefined) => c && setStack((s) => [...s, c]),
    prev: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
  };
}

export function Pager(props: { page: number; nextCursor: string | null | undefined; onNext: () => void; onPrev: () => void }) {
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" class="secondary" disabled={props.page <= 1} onClick={props.onPrev}>
        ← Previous
      </button>
      <span>Page {props.page}</span>
      <button type="button" class="secondary" disabled={!props.nextCursor} onClick={props.onNext}>
        Next →
      </button>
    </nav>
  );
}

/** One page of a cursor-paged list as a table: its header cells, a row per item, a
 * line when the page is empty, and the pager under it. */
export function PagedTable<T>(props: {
  testid: string;
  head: ComponentChildren;
  columns: number;
  items: T[];
  row: (item: T) => ComponentChildren;
  empty: string;
  nextCursor: string | null | undefined;
  pager: ReturnType<typeof usePager>;
}) {
  const { pager, nextCursor } = props;
  return (
    <>
      <div class="table-wrap">
        <table data-testid={props.testid}>
          <thead>
            <tr>{props.head}</tr>
          </thead>
          <tbody>
            {props.items.map(props.row)}
            {props.items.length === 0 && (
              <tr>
                <td colSpan={props.columns} class="muted">
                  {props.empty}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <Pager page={pager.page} nextCursor={nextCursor} onNext={() => pager.next(nextCursor)} onPrev={pager.prev} />
    </>
  );
}

/** Runs an action with its own busy flag and error, for buttons that change things. */
export function useAction<A extends unknown[]>(run: (...args: A) => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const go = async (...args: A) => {
    setBusy(true);
    setError(undefined);
    try {
      await run(...args);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, go, setError };
}
