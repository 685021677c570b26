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
    out.created_crossover ? plural(out.created_crossover, "aided read") : "",
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
  kind: "text" | "int" | "number" | "bool" | "choice";
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
    key: "reader_study_design",
    label: "Reader-study design",
    kind: "choice",
    choices: [
      ["sequential", "sequential (unaided, then at once aided)"],
      ["crossover", "crossover (sessions apart by the wash-out)"],
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
    else if (f.kind === "int" || f.kind === "number") {
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
      const shown = (v: unknown) => (typeof v === "boolean" ? (v ? "on" : "off") : String(v));
      return `${label} ${shown((project as Record<string, unknown>)[key])} → ${shown(value)}`;
    })
    .join(", ");
}
