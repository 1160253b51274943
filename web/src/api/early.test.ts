import { beforeEach, describe, expect, it, vi } from "vitest";

let token = "token-a";
vi.mock("../auth", () => ({ currentSession: () => ({ token }) }));

const { claim, startEarly } = await import("./early");

describe("calls started early", () => {
  beforeEach(() => {
    token = "token-a";
  });

  it("are claimed once by the screen, then the screen calls anew", async () => {
    const early = vi.fn(async () => "early");
    const load = vi.fn(async () => "fresh");
    startEarly("k1", early);
    expect(await claim("k1", load)).toBe("early");
    expect(await claim("k1", load)).toBe("fresh");
    expect(early).toHaveBeenCalledTimes(1);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it("are started once however often they are asked for", () => {
    const early = vi.fn(async () => 1);
    startEarly("k2", early);
    startEarly("k2", early);
    expect(early).toHaveBeenCalledTimes(1);
  });

  it("are not claimed under another key", async () => {
    startEarly("k3", async () => "range A");
    expect(await claim("k3-other", async () => "range B")).toBe("range B");
  });

  it("are not given to another session", async () => {
    startEarly("k4", async () => "for a");
    token = "token-b";
    expect(await claim("k4", async () => "for b")).toBe("for b");
  });

  it("are not used once stale", async () => {
    startEarly("k5", async () => "old");
    expect(await claim("k5", async () => "new", Date.now() + 60_000)).toBe("new");
  });

  it("hand a failure to the claimant, not to the page as an unhandled rejection", async () => {
    startEarly("k6", async () => {
      throw new Error("boom");
    });
    await expect(claim("k6", async () => "unused")).rejects.toThrow("boom");
  });
});
