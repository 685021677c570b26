// The one place that talks HTTP to Concord: session cookie + CSRF header, JSON in and out, typed errors.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly field: string | null,
    readonly body: unknown,
  ) {
    super(detail);
  }
}

function cookie(name: string): string | null {
  const match = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return match ? decodeURIComponent(match.slice(name.length + 1)) : null;
}

let csrfReady: Promise<void> | null = null;

/** Make sure the csrftoken cookie exists (GET /api/auth/csrf/ sets it). */
export function ensureCsrf(force = false): Promise<void> {
  if (force || !csrfReady || !cookie("csrftoken")) {
    csrfReady = fetch("/api/auth/csrf/", { credentials: "same-origin" }).then(() => undefined);
  }
  return csrfReady;
}

function errorFrom(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    if (typeof b.detail === "string")
      return new ApiError(status, b.detail, typeof b.field === "string" ? b.field : null, body);
    const [first] = Object.entries(b);
    if (first) {
      const [field, msg] = first;
      return new ApiError(
        status,
        `${field}: ${Array.isArray(msg) ? msg.join(" ") : String(msg)}`,
        field,
        body,
      );
    }
  }
  return new ApiError(status, `HTTP ${status}`, null, body);
}

export async function request<T>(
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  keepalive = false,
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") {
    await ensureCsrf();
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = cookie("csrftoken") ?? "";
  }
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
    keepalive,
  });
  if (response.status === 204) return null as T;
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    if (response.status === 401 || (response.status === 403 && !cookie("sessionid"))) unauthorised();
    throw errorFrom(response.status, data);
  }
  return data as T;
}

let onUnauthorised: () => void = () => undefined;
export function setUnauthorisedHandler(handler: () => void): void {
  onUnauthorised = handler;
}
function unauthorised(): void {
  onUnauthorised();
}

/** A multipart POST (file uploads): the browser sets the boundary. */
export async function upload<T>(path: string, form: FormData): Promise<T> {
  await ensureCsrf();
  const response = await fetch(path, {
    method: "POST",
    headers: { Accept: "application/json", "X-CSRFToken": cookie("csrftoken") ?? "" },
    credentials: "same-origin",
    body: form,
  });
  const data: unknown = await response.json().catch(() => null);
  if (!response.ok) throw errorFrom(response.status, data);
  return data as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body: unknown = {}) => request<T>("POST", path, body);

/** Ask again every ``everyMs`` while the server answers ``{status: "computing"}`` (202: the worker is on it),
 * at most ``tries`` times; the last answer, ready or not. */
export async function untilReady<T extends { status: string }>(
  ask: () => Promise<T>,
  tries = 150,
  everyMs = 2000,
): Promise<T> {
  let answer = await ask();
  for (let i = 0; answer.status !== "ready" && i < tries; i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    answer = await ask();
  }
  return answer;
}
