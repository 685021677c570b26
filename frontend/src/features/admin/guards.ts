// What the admin's writes will do and did, in words (issue 15, finding 10), and the project-settings form's
// values: pure helpers of the project page, so the wording and the parsing are tested without a browser.
import type { GenerateOutput, Member, Project, S } from "../../api";
import { typedMatches } from "../../ui/dialog";

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** "MRI" for MR, as people say it. */
export const modalityName = (modality: string | undefined): string =>
  modality === "MR" ? "MRI" : (modality ?? "");

/** The question before removing a role: what it cancels, what it keeps. */
export function removeMemberQuestion(m: Pick<Member, "username" | "role" | "open_assignments">): string {
  const head = `Remove ${m.username} as ${m.role}?`;
  if (m.role !== "reader") return `${head} Their assignments and readings are not affected.`;
  const open = m.open_assignments ?? 0;
  if (!open) return `${head} They have no open assignment; their submitted readings stay.`;
  return `${head} Their ${plural(open, "open assignment")} will be cancelled; their submitted readings stay.`;
}

/** What removing did. */
export function removeMemberResult(out: S["MembershipRemoveOutput"]): string {
  const head = `Removed ${out.username} as ${out.role}`;
  if (out.role !== "reader") return `${head}.`;
  return `${head}; ${plural(out.cancelled_assignments, "open assignment")} cancelled.`;
}

/** What generating did: "Created 4 assignments (1 blinded repeat, 1 gold case)." */
export function generateResult(out: GenerateOutput): string {
  if (!out.created) return "No assignment created: every case already has its readers.";
  const extra = [
    out.created_repeats ? plural(out.created_repeats, "blinded repeat") : "",
    out.created_crossover ? plural(out.created_crossover, "crossover read") : "",
    out.gold_cases ? plural(out.gold_cases, "gold case") : "",
  ].filter(Boolean);
  return `Created ${plural(out.created, "assignment")}${extra.length ? ` (${extra.join(", ")})` : ""}.`;
}

/** Deletion needs the project's exact name typed (the dialog's rule). */
export const deleteConfirmed = typedMatches;

export type Settings = S["ProjectUpdateInputRequest"];
type SettingKey = keyof Settings;

interface SettingField {
  key: SettingKey;
  label: string;
  kind: "text" | "int" | "number" | "bool" | "choice" | "conditions";
  choices?: [string, string][];
  min?: number;
  max?: number;
  step?: string;
}

/** The project settings an admin edits (the scheme is fixed: readings refer to it). */
export const SETTING_FIELDS: SettingField[] = [
  { key: "name", label: "Name", kind: "text" },
  { key: "description", label: "Description", kind: "text" },
  { key: "readers_per_case", label: "Readers per case", kind: "int", min: 1, max: 50 },
  { key: "gold_fraction", label: "Gold fraction", kind: "number", min: 0, max: 1, step: "0.05" },
  { key: "repeat_fraction", label: "Repeat fraction", kind: "number", min: 0, max: 1, step: "0.05" },
  { key: "washout_days", label: "Wash-out days", kind: "int", min: 0 },
  { key: "washout_cases", label: "Wash-out cases", kind: "int", min: 0 },
  {
    key: "adjudication_threshold",
    label: "Adjudication threshold (consensus posterior below it)",
    kind: "number",
    min: 0.01,
    max: 1,
    step: "0.01",
  },
  {
    key: "contour_disagreement_mm",
    label: "Contour disagreement (mm)",
    kind: "number",
    min: 0.1,
    max: 100,
    step: "0.1",
  },
  { key: "ai_aided_reads", label: "AI-aided reads", kind: "bool" },
  {
    key: "reader_study_conditions",
    label:
      "Reader-study conditions (in order, comma-separated; empty: unaided, aided when AI-aided reads are on)",
    kind: "conditions",
  },
  {
    key: "reader_study_design",
    label: "Reader-study design",
    kind: "choice",
    choices: [
      ["sequential", "sequential (each condition in turn, at once: unaided, then aided)"],
      ["crossover", "crossover (sessions apart by the wash-out, order a Latin square per reader)"],
    ],
  },
  { key: "readers_may_adjudicate_own_cases", label: "Adjudicators may decide cases they read", kind: "bool" },
  {
    key: "deidentify",
    label: "De-identify imports",
    kind: "choice",
    choices: [
      ["site", "site default"],
      ["on", "on"],
      ["off", "off (files stored as received)"],
    ],
  },
  {
    key: "deidentify_dates",
    label: "Dates on import",
    kind: "choice",
    choices: [
      ["site", "site default"],
      ["keep", "keep"],
      ["shift", "shift by a per-patient offset"],
      ["remove", "remove"],
    ],
  },
];

export const MAX_CONDITIONS = 6;

/** "t1_only, t1_stir" → the conditions in order, or an error naming the field; the API checks again (e.g. a
 * T1 condition on a CT scheme). An empty text clears them (the project's default). */
export function parseConditions(
  text: string,
  known: readonly string[],
): { conditions: string[] } | { error: string } {
  const names = text
    .split(/[\s,]+/)
    .map((n) => n.trim())
    .filter(Boolean);
  const head = "Reader-study conditions:";
  if (!names.length) return { conditions: [] };
  const unknown = names.find((n) => !known.includes(n));
  if (unknown !== undefined)
    return { error: `${head} unknown condition "${unknown}"; known: ${known.join(", ")}.` };
  if (new Set(names).size !== names.length) return { error: `${head} a condition is named twice.` };
  if (names.length < 2 || names.length > MAX_CONDITIONS)
    return { error: `${head} a reader study compares 2 to ${MAX_CONDITIONS} conditions.` };
  return { conditions: names };
}

/** The conditions as the form shows them. */
export const conditionsText = (names: readonly string[] | undefined): string => (names ?? []).join(", ");

/** The form's raw values (input.value, or "true"/"false" for a checkbox) → the settings that changed, or an
 * error naming the field. Unchanged settings are left out, so saving sends only what the admin changed. */
export function settingsChanges(
  project: Project,
  raw: Partial<Record<SettingKey, string>>,
): { changes: Settings } | { error: string } {
  const changes: Record<string, unknown> = {};
  for (const f of SETTING_FIELDS) {
    const text = raw[f.key];
    if (text === undefined) continue;
    let value: unknown = text;
    if (f.kind === "text") {
      value = text.trim();
      if (f.key === "name" && !value) return { error: "Name: the project needs a name." };
    } else if (f.kind === "bool") value = text === "true";
    else if (f.kind === "conditions") {
      const known = (project.condition_choices ?? []).map((c) => c.name);
      const parsed = parseConditions(text, known);
      if ("error" in parsed) return parsed;
      if (conditionsText(parsed.conditions) !== conditionsText(project.reader_study_conditions))
        changes[f.key] = parsed.conditions;
      continue;
    } else if (f.kind === "int" || f.kind === "number") {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n) || (f.kind === "int" && !Number.isInteger(n)))
        return { error: `${f.label}: enter ${f.kind === "int" ? "a whole number" : "a number"}.` };
      if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max))
        return { error: `${f.label}: must lie between ${f.min ?? "-∞"} and ${f.max ?? "∞"}.` };
      value = n;
    }
    if (value !== (project as Record<string, unknown>)[f.key]) changes[f.key] = value;
  }
  return { changes: changes as Settings };
}

/** "readers per case 3 → 2, description changed". */
export function describeChanges(project: Project, changes: Settings): string {
  return Object.entries(changes)
    .map(([key, value]) => {
      const f = SETTING_FIELDS.find((x) => x.key === key);
      const label = (f?.label ?? key).replace(/ \(.*\)$/, "").toLowerCase();
      if (f?.kind === "text" && key !== "name") return `${label} changed`;
      const shown = (v: unknown) =>
        typeof v === "boolean"
          ? v
            ? "on"
            : "off"
          : Array.isArray(v)
            ? v.length
              ? v.join(", ")
              : "default"
            : String(v);
      return `${label} ${shown((project as Record<string, unknown>)[key])} → ${shown(value)}`;
    })
    .join(", ");
}
