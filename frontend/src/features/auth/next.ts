// Where the login page sends the user back to. A logged-out visit keeps its address (path and query) in
// ?next=…; the login page itself is never a destination (that was the loop of issue 15), nor is anything
// off this site.

const LOGIN = "/login";

/** The login page's address for a logged-out visit to `pathname` + `search`. */
export function loginPath(pathname: string, search: string): string {
  if (pathname === LOGIN) return LOGIN + search; // already there: keep the ?next= it has
  const here = pathname + search;
  return here === "/" ? LOGIN : `${LOGIN}?next=${encodeURIComponent(here)}`;
}

/** The destination after logging in, from the login page's query string; "/" when none is safe. */
export function nextAfterLogin(search: string): string {
  const next = new URLSearchParams(search).get("next");
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  const path = next.split(/[?#]/, 1)[0].replace(/\/+$/, "");
  return path === LOGIN ? "/" : next;
}
