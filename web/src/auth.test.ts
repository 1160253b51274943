import { describe, expect, it } from "vitest";
import { peekRole, sessionFromToken } from "./auth";

function token(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
}

describe("sessionFromToken", () => {
  it("reads role, subject and partner", () => {
    const s = sessionFromToken(token({ sub: "dev-partner-p1", exp: 2000, "cognito:groups": ["partner"], "custom:partner_id": "p1" }), 1000);
    expect(s).toMatchObject({ role: "partner", subject: "dev-partner-p1", partnerId: "p1" });
  });
  it("takes the widest role of several groups", () => {
    expect(sessionFromToken(token({ exp: 2000, "cognito:groups": ["sales_rep", "sales_manager"] }), 1000)?.role).toBe("sales_manager");
  });
  it("refuses expired, roleless and malformed tokens", () => {
    expect(sessionFromToken(token({ exp: 999, "cognito:groups": ["admin"] }), 1000)).toBeNull();
    expect(sessionFromToken(token({ exp: 2000, "cognito:groups": ["service"] }), 1000)).toBeNull();
    expect(sessionFromToken("not-a-token", 1000)).toBeNull();
  });
});

function storage(items: Record<string, string>) {
  const keys = Object.keys(items);
  return { length: keys.length, key: (i: number) => keys[i] ?? null, getItem: (k: string) => items[k] ?? null };
}

describe("peekRole", () => {
  const manager = token({ exp: 4e9, "cognito:groups": ["sales_manager"] });
  const rep = token({ exp: 4e9, "cognito:groups": ["sales_rep"] });
  it("reads the stored dev token, or the one arriving in the fragment first", () => {
    expect(peekRole(storage({ "tierdesk.devToken": manager }))).toBe("sales_manager");
    expect(peekRole(storage({ "tierdesk.devToken": manager }), `#token=${rep}&next=/tiers`)).toBe("sales_rep");
  });
  it("reads oidc-client-ts's stored user", () => {
    expect(peekRole(storage({ other: "x", "oidc.user:https://idp:client": JSON.stringify({ id_token: rep }) }))).toBe("sales_rep");
  });
  it("gives no hint without a usable session", () => {
    expect(peekRole(storage({}))).toBeNull();
    expect(peekRole(storage({ "tierdesk.devToken": token({ exp: 1, "cognito:groups": ["admin"] }) }))).toBeNull();
    expect(peekRole(storage({ "oidc.user:x": "{not json" }))).toBeNull();
  });
});
