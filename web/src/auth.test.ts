import { describe, expect, it } from "vitest";
import { sessionFromToken } from "./auth";

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
