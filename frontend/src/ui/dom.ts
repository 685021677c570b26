// A tiny element builder: h("button", {class: "x", onclick}, "text").
type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") {
        el.addEventListener(k.slice(2), v as EventListener);
      } else if (k === "class") {
        el.className = String(v);
      } else if (k === "style" && typeof v === "object") {
        Object.assign(el.style, v);
      } else if (k in el && !k.includes("-") && k !== "list" && k !== "form") {
        (el as unknown as Record<string, unknown>)[k] = v;
      } else {
        el.setAttribute(k, v === true ? "" : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

const SVG = "http://www.w3.org/2000/svg";
export function s(
  tag: string,
  attrs: Record<string, string | number> = {},
  ...children: (Node | string)[]
): SVGElement {
  const el = document.createElementNS(SVG, tag) as SVGElement;
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function message(text: string, kind: "error" | "info" = "info"): HTMLElement {
  return h("p", { class: `msg ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** A short confirmation that survives a route change (it lives outside the router's outlet), then fades. */
export function toast(text: string, ms = 8000): HTMLElement {
  const el = h("div", { class: "toast", role: "status", "data-testid": "toast" }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

/** "Loading images…" in a viewer's box until `done()` (the first image is on screen, or loading failed). */
export function loadingIndicator(box: HTMLElement, text = "Loading images…"): () => void {
  const el = h("p", { class: "loading", role: "status", "data-testid": "loading" }, text);
  box.append(el);
  return () => el.remove();
}

export function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || Number.isNaN(v) ? "–" : v.toFixed(digits);
}

/** True when a key event comes from a text field, where shortcuts must not fire. */
export function typing(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  if (!t) return false;
  return (
    t.tagName === "TEXTAREA" ||
    t.isContentEditable ||
    (t.tagName === "INPUT" && !["radio", "checkbox", "button"].includes((t as HTMLInputElement).type))
  );
}
