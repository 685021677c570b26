import { describe, expect, it } from "vitest";
import { loginPath, nextAfterLogin } from "./next";

describe("login redirects", () => {
  it("keep a deep link, query included", () => {
    expect(loginPath("/read/AUEo4fec3S2i9R0lc6mP6A", "")).toBe(
      "/login?next=%2Fread%2FAUEo4fec3S2i9R0lc6mP6A",
    );
    expect(loginPath("/projects/3/worklist", "?done=1")).toBe(
      "/login?next=%2Fprojects%2F3%2Fworklist%3Fdone%3D1",
    );
    expect(nextAfterLogin("?next=%2Fprojects%2F3%2Fworklist%3Fdone%3D1")).toBe("/projects/3/worklist?done=1");
  });

  it("never point the login page at itself", () => {
    expect(loginPath("/login", "?next=%2Fread%2F40")).toBe("/login?next=%2Fread%2F40");
    expect(loginPath("/login", "")).toBe("/login");
    expect(nextAfterLogin("?next=%2Flogin")).toBe("/");
    expect(nextAfterLogin("?next=%2Flogin%2F%3Fnext%3D%252Flogin")).toBe("/");
  });

  it("send the root and unsafe destinations home", () => {
    expect(loginPath("/", "")).toBe("/login");
    expect(nextAfterLogin("")).toBe("/");
    expect(nextAfterLogin("?next=https%3A%2F%2Fevil.example")).toBe("/");
    expect(nextAfterLogin("?next=%2F%2Fevil.example")).toBe("/");
    expect(nextAfterLogin("?next=%2F%5Cevil.example")).toBe("/");
  });
});
