import { api } from "../../api";
import { ApiError, ensureCsrf } from "../../api/client";
import { navigate } from "../../nav";
import { nextAfterLogin } from "./next";
import { forget, me } from "../../session";
import { h, message } from "../../ui/dom";

export function loginView(outlet: HTMLElement): void {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const errors = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    {
      class: "card login",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        errors.replaceChildren();
        try {
          await ensureCsrf(true);
          await api.login(username.value, password.value);
          forget();
          await ensureCsrf(true); // login rotates the token
          await me(true);
          navigate(nextAfterLogin(location.search), true);
        } catch (err) {
          errors.append(message(err instanceof ApiError ? err.detail : "Could not log in", "error"));
        }
      },
    },
    h("h1", null, "Concord"),
    h("p", { class: "sub" }, "Multi-reader grading of sacroiliac-joint scans"),
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    h("button", { type: "submit", class: "primary" }, "Log in"),
    errors,
  );
  outlet.append(h("main", { class: "centre", id: "main" }, form));
  username.focus();
}
