// Who is signed in, and the bearer token for the API. The mode comes from
// /config.json: "dev" locally (a token minted by the dev gateway's /dev/sign-in,
// handed over in the URL fragment of /auth/dev) or "cognito" in AWS (the hosted UI,
// authorization code + PKCE through oidc-client-ts).
import type { UserManager } from "oidc-client-ts";

export type Role = "sales_rep" | "sales_manager" | "admin" | "partner";

export interface Session {
  token: string;
  role: Role;
  subject: string;
  partnerId?: string;
  email?: string;
}

export type AuthConfig =
  | { auth: "dev" }
  | {
      auth: "cognito";
      authority: string;
      clientId: string;
      redirectUri: string;
      postLogoutRedirectUri: string;
      /** The hosted UI's origin: Cognito's discovery document names no sign-out endpoint. */
      cognitoDomain: string;
    };

const DEV_TOKEN_KEY = "tierdesk.devToken";
const ROLE_ORDER: Role[] = ["admin", "sales_manager", "sales_rep", "partner"];

let config: AuthConfig = { auth: "dev" };
let manager: UserManager | null = null;
let session: Session | null = null;

/** The claims of a JWT, unverified: the API verifies; the app only reads the role. */
export function decodeClaims(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const json = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    const parsed: unknown = JSON.parse(json);
    return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The session a token stands for, or null when it is unreadable or expired. */
export function sessionFromToken(token: string, nowSeconds = Date.now() / 1000): Session | null {
  const claims = decodeClaims(token);
  if (!claims) return null;
  const exp = typeof claims.exp === "number" ? claims.exp : 0;
  if (exp <= nowSeconds) return null;
  const groups = Array.isArray(claims["cognito:groups"]) ? (claims["cognito:groups"] as unknown[]) : [];
  // A user in several groups acts with the widest role, as the API does.
  const role = ROLE_ORDER.find((r) => groups.includes(r));
  if (!role) return null;
  const partnerId = typeof claims["custom:partner_id"] === "string" ? claims["custom:partner_id"] : undefined;
  return {
    token,
    role,
    subject: typeof claims.sub === "string" ? claims.sub : "",
    partnerId,
    email: typeof claims.email === "string" ? claims.email : undefined,
  };
}

/**
 * Reads /config.json and restores the session. Handles the two sign-in returns:
 * `/auth/dev#token=…&next=…` (dev gateway) and `/auth/callback?code=…` (Cognito).
 * Returns the path to show.
 */
export async function initAuth(): Promise<string> {
  try {
    const res = await fetch("/config.json", { cache: "no-store" });
    if (res.ok) config = (await res.json()) as AuthConfig;
  } catch {
    // No config: the dev gateway always serves one, so this is a broken deploy; stay in dev mode.
  }
  const here = window.location.pathname + window.location.search;
  if (config.auth === "dev") {
    if (window.location.pathname === "/auth/dev") {
      const params = new URLSearchParams(window.location.hash.slice(1));
      const token = params.get("token") ?? "";
      if (sessionFromToken(token)) sessionStorage.setItem(DEV_TOKEN_KEY, token);
      const next = params.get("next") ?? "/";
      const safeNext = next.startsWith("/") && !next.startsWith("//") ? next : "/";
      window.history.replaceState(null, "", safeNext);
      session = sessionFromToken(token);
      return safeNext;
    }
    const stored = sessionStorage.getItem(DEV_TOKEN_KEY);
    session = stored ? sessionFromToken(stored) : null;
    if (stored && !session) sessionStorage.removeItem(DEV_TOKEN_KEY);
    return here;
  }
  // Loaded only in Cognito mode, so the local console does not carry it.
  const { UserManager: Manager, WebStorageStateStore } = await import("oidc-client-ts");
  manager = new Manager({
    authority: config.authority,
    client_id: config.clientId,
    redirect_uri: config.redirectUri,
    post_logout_redirect_uri: config.postLogoutRedirectUri,
    response_type: "code",
    scope: "openid email profile",
    userStore: new WebStorageStateStore({ store: window.sessionStorage }),
    automaticSilentRenew: false,
  });
  if (window.location.pathname === "/auth/callback") {
    const user = await manager.signinRedirectCallback();
    const state = user.state as { next?: string } | undefined;
    const next = state?.next && state.next.startsWith("/") ? state.next : "/";
    window.history.replaceState(null, "", next);
    // The ID token, not the access token: only it carries `email` and
    // `custom:partner_id`, and the API's authorizer accepts this client's ID tokens.
    session = user.id_token ? sessionFromToken(user.id_token) : null;
    return next;
  }
  const user = await manager.getUser();
  session = user && !user.expired && user.id_token ? sessionFromToken(user.id_token) : null;
  return here;
}

/**
 * The role of the session this tab holds, read without waiting for /config.json: the
 * dev token (or the one arriving in `/auth/dev#token=…`) or oidc-client-ts's stored
 * user. Only a hint, to start fetching the screen's code early; initAuth decides.
 */
export function peekRole(storage: Pick<Storage, "getItem" | "key" | "length">, hash = ""): Role | null {
  const arriving = new URLSearchParams(hash.replace(/^#/, "")).get("token");
  const dev = arriving ?? storage.getItem(DEV_TOKEN_KEY);
  if (dev) return sessionFromToken(dev)?.role ?? null;
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i);
    if (!key?.startsWith("oidc.user:")) continue;
    try {
      const user = JSON.parse(storage.getItem(key) ?? "") as { id_token?: unknown };
      if (typeof user.id_token === "string") return sessionFromToken(user.id_token)?.role ?? null;
    } catch {
      // not a stored user: no hint
    }
  }
  return null;
}

export function currentSession(): Session | null {
  if (session && !sessionFromToken(session.token)) session = null;
  return session;
}

export function authMode(): AuthConfig["auth"] {
  return config.auth;
}

/** Starts a sign-in: the dev sign-in page, or Cognito's hosted UI. */
export async function signIn(next = "/"): Promise<void> {
  if (config.auth === "dev" || !manager) {
    window.location.assign(`/dev/sign-in?next=${encodeURIComponent(next)}`);
    return;
  }
  await manager.signinRedirect({ state: { next } });
}

/**
 * Starts a partner sign-up: the dev sign-up page, or Cognito's hosted UI (its sign-in
 * page offers "Sign up"; the signup triggers make the new account a partner).
 */
export async function signUp(next = "/partner-portal"): Promise<void> {
  if (config.auth === "dev" || !manager) {
    window.location.assign(`/dev/sign-up?next=${encodeURIComponent(next)}`);
    return;
  }
  await manager.signinRedirect({ state: { next } });
}

export async function signOut(): Promise<void> {
  session = null;
  if (config.auth === "dev" || !manager) {
    sessionStorage.removeItem(DEV_TOKEN_KEY);
    window.location.assign("/dev/sign-in");
    return;
  }
  await manager.removeUser();
  const logout = new URL("/logout", config.cognitoDomain);
  logout.searchParams.set("client_id", config.clientId);
  logout.searchParams.set("logout_uri", config.postLogoutRedirectUri);
  window.location.assign(logout.toString());
}
