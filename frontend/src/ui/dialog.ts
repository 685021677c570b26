// A modal confirmation (the native <dialog>: focus trapped, Escape cancels), for writes that cannot be undone.
import { h } from "./dom";

export interface ConfirmOptions {
  title: string;
  body: string;
  confirmLabel: string;
  /** When set, the confirm button stays disabled until exactly this text is typed (e.g. a project's name). */
  typeToConfirm?: string;
  /** Called when the admin confirms; its error is shown in the dialog, which then stays open. */
  onConfirm?: () => Promise<void>;
}

/** The typed confirmation matches (surrounding spaces aside, case counts). */
export const typedMatches = (typed: string, expected: string): boolean => typed.trim() === expected;

/** Resolves true once confirmed (and `onConfirm` succeeded), false when cancelled. */
export function confirmDialog(opts: ConfirmOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const error = h("p", { class: "msg error", role: "alert", hidden: true });
    const ok = h("button", { type: "submit", class: "danger" }, opts.confirmLabel);
    const cancel = h("button", { type: "button" }, "Cancel");
    const typed = opts.typeToConfirm
      ? h("input", { id: "confirm-typed", autocomplete: "off", spellcheck: false })
      : null;
    const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": titleId, "aria-modal": "true" },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: titleId }, opts.title),
        h("p", { "data-testid": "confirm-body" }, opts.body),
        typed
          ? h(
              "label",
              { for: "confirm-typed" },
              "Type ",
              h("strong", null, opts.typeToConfirm ?? ""),
              " to confirm",
            )
          : null,
        typed,
        error,
        h("div", { class: "form-row" }, cancel, ok),
      ),
    );
    let settled = false;
    const finish = (value: boolean) => {
      if (settled) return;
      settled = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    const sync = () => {
      if (typed) ok.disabled = !typedMatches(typed.value, opts.typeToConfirm ?? "");
    };
    typed?.addEventListener("input", sync);
    sync();
    cancel.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      finish(false);
    });
    dialog.querySelector("form")?.addEventListener("submit", (e) => {
      e.preventDefault();
      if (ok.disabled) return;
      ok.disabled = cancel.disabled = true;
      void (async () => {
        try {
          await opts.onConfirm?.();
          finish(true);
        } catch (err) {
          error.textContent = err instanceof Error ? err.message : String(err);
          error.hidden = false;
          cancel.disabled = false;
          sync();
          if (!typed) ok.disabled = false;
        }
      })();
    });
    document.body.append(dialog);
    dialog.showModal();
    (typed ?? cancel).focus();
  });
}
