// The typed API client: openapi-fetch over the types generated from
// infra/openapi.yaml, so a contract change fails `tsc --noEmit`. Every error answer
// becomes an ApiError carrying the envelope's code, message and field messages.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { currentSession } from "../auth";

export type Schemas = components["schemas"];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** `details.fields` of a 400 validation_failed: field path → message. */
    readonly fields: Record<string, string> = {},
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The error envelope `{error:{code,message,details:{fields}}}` (or API Gateway's `{message}`). */
export function toApiError(status: number, body: unknown): ApiError {
  const envelope = (body && typeof body === "object" ? (body as Record<string, unknown>) : {}) as {
    error?: { code?: unknown; message?: unknown; details?: unknown };
    message?: unknown;
  };
  const err = envelope.error;
  if (err && typeof err === "object") {
    const details = err.details && typeof err.details === "object" ? (err.details as Record<string, unknown>) : {};
    const rawFields = details.fields && typeof details.fields === "object" ? (details.fields as Record<string, unknown>) : {};
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(rawFields)) fields[k] = String(v);
    return new ApiError(status, String(err.code ?? "error"), String(err.message ?? `HTTP ${status}`), fields, details);
  }
  const message = typeof envelope.message === "string" ? envelope.message : `HTTP ${status}`;
  return new ApiError(status, status === 401 ? "unauthorized" : "error", message);
}

const auth: Middleware = {
  onRequest({ request }) {
    const session = currentSession();
    if (session) request.headers.set("Authorization", `Bearer ${session.token}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "" });
api.use(auth);

/** Listeners told about every request (the header's progress bar) and 401s. */
let inflight = 0;
const listeners = new Set<(busy: boolean) => void>();
export function onBusy(fn: (busy: boolean) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
api.use({
  onRequest({ request }) {
    inflight += 1;
    listeners.forEach((l) => l(true));
    return request;
  },
  onResponse({ response }) {
    inflight = Math.max(0, inflight - 1);
    if (inflight === 0) listeners.forEach((l) => l(false));
    return response;
  },
  onError() {
    inflight = Math.max(0, inflight - 1);
    if (inflight === 0) listeners.forEach((l) => l(false));
  },
});

/**
 * Unwraps an openapi-fetch result: the JSON data, or a thrown ApiError. Routes that
 * also answer CSV type their data as `T | string`; the JSON calls never get a string.
 */
export async function ok<T>(
  result: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<Exclude<T, string>> {
  const { data, error, response } = await result;
  if (!response.ok || error !== undefined) throw toApiError(response.status, error);
  if (typeof data === "string") throw new ApiError(response.status, "unexpected_text", "Expected JSON, got text");
  return data as Exclude<T, string>;
}

/** A CSV export: fetched with the bearer token, then saved as a file. */
export async function downloadCsv(path: string, filename: string): Promise<void> {
  const session = currentSession();
  const url = path + (path.includes("?") ? "&" : "?") + "format=csv";
  const res = await fetch(url, { headers: session ? { Authorization: `Bearer ${session.token}` } : {} });
  if (!res.ok) throw toApiError(res.status, await res.json().catch(() => ({})));
  const blob = await res.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** Binary answers (the quote PDF) with the bearer token, as an object URL. */
export async function fetchBlobUrl(path: string): Promise<string> {
  const session = currentSession();
  const res = await fetch(path, { headers: session ? { Authorization: `Bearer ${session.token}` } : {} });
  if (!res.ok) throw toApiError(res.status, await res.json().catch(() => ({})));
  return URL.createObjectURL(await res.blob());
}

/** A fresh `Idempotency-Key` for one user action (a retry of the same action reuses it). */
export function idempotencyKey(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto
    ? crypto.randomUUID()
    : `k-${Date.now()}-${Math.random().toString(36).slice(2)}`;
}
