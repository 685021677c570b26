// History-API router. A view renders into the outlet and may return a cleanup function, called when the
// route changes (the viewer destroys its rendering engine there).
export type Params = Record<string, string>;
export type Cleanup = () => void;
export type View = (outlet: HTMLElement, params: Params) => Cleanup | void | Promise<Cleanup | void>;

interface Route {
  pattern: RegExp;
  keys: string[];
  view: View;
}

export function compile(path: string): { pattern: RegExp; keys: string[] } {
  const keys: string[] = [];
  const source = path
    .replace(/\/$/, "")
    .split("/")
    .map((part) => {
      if (part.startsWith(":")) {
        keys.push(part.slice(1));
        return "([^/]+)";
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return { pattern: new RegExp(`^${source}/?$`), keys };
}

export function match(
  routes: { pattern: RegExp; keys: string[] }[],
  pathname: string,
): [number, Params] | null {
  for (let i = 0; i < routes.length; i++) {
    const m = routes[i].pattern.exec(pathname);
    if (m) {
      const params: Params = {};
      routes[i].keys.forEach((k, j) => (params[k] = decodeURIComponent(m[j + 1])));
      return [i, params];
    }
  }
  return null;
}

export class Router {
  private routes: Route[] = [];
  private cleanup: Cleanup | null = null;
  private generation = 0;

  constructor(
    private outlet: HTMLElement,
    private notFound: View,
  ) {
    window.addEventListener("popstate", () => void this.render());
    document.addEventListener("click", (e) => {
      const a = (e.target as HTMLElement | null)?.closest?.("a");
      if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
      const href = a.getAttribute("href");
      if (
        !href ||
        !href.startsWith("/") ||
        href.startsWith("/api/") ||
        href.startsWith("/admin/") ||
        a.target
      )
        return;
      e.preventDefault();
      this.go(href);
    });
  }

  add(path: string, view: View): this {
    this.routes.push({ ...compile(path), view });
    return this;
  }

  go(path: string, replace = false): void {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    void this.render();
  }

  async render(): Promise<void> {
    const generation = ++this.generation;
    if (this.cleanup) {
      try {
        this.cleanup();
      } finally {
        this.cleanup = null;
      }
    }
    this.outlet.replaceChildren();
    document.body.classList.remove("reading-room");
    const found = match(this.routes, location.pathname);
    const view = found ? this.routes[found[0]].view : this.notFound;
    const result = await view(this.outlet, found ? found[1] : {});
    if (typeof result === "function") {
      if (generation === this.generation) this.cleanup = result;
      else result(); // navigated away while the view was loading
    }
  }
}
