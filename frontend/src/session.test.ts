import { describe, expect, it } from "vitest";
import { canManage } from "./session";

const user = (is_staff: boolean, roles: Record<string, string[]>) => ({
  id: 1,
  username: "u",
  is_staff,
  roles,
});

describe("canManage", () => {
  it("hides Manage from logged-out visitors, readers and adjudicators", () => {
    expect(canManage(null)).toBe(false);
    expect(canManage(user(false, {}))).toBe(false);
    expect(canManage(user(false, { "1": ["reader"], "2": ["reader", "adjudicator"] }))).toBe(false);
  });

  it("shows Manage to staff and to an admin of any project", () => {
    expect(canManage(user(true, {}))).toBe(true);
    expect(canManage(user(false, { "1": ["reader"], "3": ["admin"] }))).toBe(true);
  });
});
