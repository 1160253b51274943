import { describe, expect, it } from "vitest";
import { publicRoute } from "./public-paths";

const TOKEN = "Xq3_-9aZb0cD1eF2gH3iJ4kL5mN6oP7qR8sT9uV0wXy";

describe("public paths", () => {
  it("opens the quote page from the emailed link without sign-in", () => {
    expect(publicRoute(`/quote/${TOKEN}`)).toEqual({ page: "quote", token: TOKEN });
    expect(publicRoute(`/quote/${TOKEN}/`)).toEqual({ page: "quote", token: TOKEN });
    // a malformed escape is passed on as it is (the API answers 404)
    expect(publicRoute("/quote/%E0%A4%A")).toEqual({ page: "quote", token: "%E0%A4%A" });
  });
  it("opens the pricing storefront and one segment's plans without sign-in", () => {
    expect(publicRoute("/pricing")).toEqual({ page: "pricing", segmentId: null });
    expect(publicRoute("/pricing/")).toEqual({ page: "pricing", segmentId: null });
    expect(publicRoute("/pricing/luxury")).toEqual({ page: "pricing", segmentId: "luxury" });
    expect(publicRoute("/pricing/luxury/extra")).toBeNull();
  });
  it("leaves every console path to the sign-in", () => {
    for (const path of ["/", "/quotes", "/quotes/quo_01", "/quotes/new", "/quote", "/quote/", `/quote/${TOKEN}/pdf`, "/analytics", "/auth/dev", "/pricingx", "/partner-portal"]) {
      expect(publicRoute(path), path).toBeNull();
    }
  });
});
