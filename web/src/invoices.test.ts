import { describe, expect, it } from "vitest";
import { actionsFor, shortId } from "./invoices";

describe("invoice actions offered", () => {
  it("follows what each status allows", () => {
    expect(actionsFor("open")).toEqual(["send", "pay", "void"]);
    expect(actionsFor("paid")).toEqual(["send", "refund"]);
    expect(actionsFor("partially_refunded")).toEqual(["send", "refund"]);
    expect(actionsFor("refunded")).toEqual(["send"]);
    expect(actionsFor("void")).toEqual([]);
    expect(actionsFor("draft")).toEqual([]);
  });
  it("shortens long ids only", () => {
    expect(shortId("prt_01m94pnq64pa0qv8y1er811anj")).toBe("prt_01m94p…811anj");
    expect(shortId("prt_1")).toBe("prt_1");
  });
});
