// Who is logged in, cached for the page's life; reset on login and logout.
import { api, type Me } from "./api";
import { ApiError } from "./api/client";

let current: Me | null = null;

export async function me(refresh = false): Promise<Me | null> {
  if (current && !refresh) return current;
  try {
    current = await api.me();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) current = null;
    else throw e;
  }
  return current;
}

export function forget(): void {
  current = null;
}

export function rolesIn(user: Me, projectId: number): string[] {
  return user.roles[String(projectId)] ?? [];
}

/** "Manage" is for staff and for admins of some project; readers and logged-out visitors have nothing to manage. */
export function canManage(user: Me | null): boolean {
  return !!user && (user.is_staff || Object.values(user.roles).some((r) => r.includes("admin")));
}
