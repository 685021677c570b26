// Admin: projects, members and roles, cases, assignment generation.
import { api, type Member } from "../../api";
import { ApiError } from "../../api/client";
import { navigate } from "../../nav";
import type { Params } from "../../router";
import { me } from "../../session";
import { confirmDialog } from "../../ui/dialog";
import { h, message, toast } from "../../ui/dom";
import {
  conditionsText,
  describeChanges,
  generateResult,
  modalityName,
  removeMemberQuestion,
  removeMemberResult,
  SETTING_FIELDS,
  settingsChanges,
} from "./guards";

function field(labelText: string, input: HTMLElement): HTMLElement {
  return h("label", null, labelText, input);
}

async function guarded(errors: HTMLElement, fn: () => Promise<void>): Promise<void> {
  errors.replaceChildren();
  try {
    await fn();
  } catch (e) {
    errors.append(
      message(
        e instanceof ApiError
          ? `${e.detail}${e.field ? ` (${e.field})` : ""}`
          : e instanceof Error
            ? e.message
            : String(e),
        "error",
      ),
    );
  }
}

export async function manageProjectsView(outlet: HTMLElement): Promise<void> {
  const user = await me();
  const main = h("main", { class: "page", id: "main" }, h("h1", null, "Manage projects"));
  outlet.append(main);
  const [projects, schemes] = await Promise.all([api.projects(), api.schemes()]);
  const visible = projects.filter(
    (p) => user?.is_staff || (user?.roles[String(p.id)] ?? []).includes("admin"),
  );
  main.append(
    h(
      "ul",
      { class: "projects" },
      visible.map((p) =>
        h(
          "li",
          { class: "card" },
          h("h2", null, h("a", { href: `/manage/projects/${p.id}` }, p.name)),
          h("p", { class: "sub" }, p.scheme),
        ),
      ),
    ),
  );
  if (user?.is_staff) {
    const name = h("input", { id: "new-name", required: true });
    const scheme = h(
      "select",
      { id: "new-scheme" },
      schemes.map((sc) => h("option", { value: sc.name }, `${sc.name} v${sc.version}`)),
    );
    const k = h("input", { type: "number", min: 1, max: 10, value: "3", id: "new-k" });
    const errors = h("div", { "aria-live": "assertive" });
    main.append(
      h("h2", null, "New project"),
      h(
        "form",
        {
          class: "form-row",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void guarded(errors, async () => {
              const p = await api.projectCreate({
                name: name.value,
                scheme: scheme.value,
                readers_per_case: Number(k.value),
              });
              navigate(`/manage/projects/${p.id}`);
            });
          },
        },
        field("Name", name),
        field("Scheme", scheme),
        field("Readers per case", k),
        h("button", { type: "submit", class: "primary" }, "Create"),
      ),
      errors,
    );
  }
}

export async function manageProjectView(outlet: HTMLElement, params: Params): Promise<void> {
  const id = Number(params.id);
  const main = h("main", { class: "page", id: "main" });
  outlet.append(main);
  let project = await api.project(id);
  const headBox = h("div");
  const membersBox = h("div");
  const casesBox = h("div");
  const assignBox = h("div");
  const importBox = h("div");
  const settingsBox = h("div");
  const renderHead = () =>
    headBox.replaceChildren(
      h("h1", null, `${project.name}`),
      h(
        "p",
        { class: "sub" },
        `${project.scheme} (${modalityName(project.modality)}) · ${project.readers_per_case} readers per case · gold ${project.gold_fraction} · repeats ${project.repeat_fraction} · `,
        h("a", { href: `/manage/projects/${id}/agreement` }, "Agreement dashboard"),
        " · ",
        h("a", { href: `/manage/projects/${id}/reader-study` }, "Reader study"),
        " · ",
        h("a", { href: `/manage/projects/${id}/training` }, "Training and models"),
      ),
    );
  renderHead();
  main.append(
    headBox,
    h(
      "div",
      { class: "cols" },
      h("section", { "aria-label": "Members" }, membersBox),
      h("section", { "aria-label": "Cases" }, casesBox),
    ),
    h("section", { "aria-label": "Study import" }, importBox),
    h("section", { "aria-label": "Assignments" }, assignBox),
    h("section", { "aria-label": "Project settings" }, settingsBox),
    h(
      "p",
      { class: "links" },
      "Exports: ",
      h("a", { href: `/api/projects/${id}/exports/readings.csv` }, "readings.csv"),
      h("a", { href: `/api/projects/${id}/exports/consensus.csv` }, "consensus.csv"),
      h("a", { href: `/api/projects/${id}/exports/adjudications.csv` }, "adjudications.csv"),
      h("a", { href: `/api/projects/${id}/agreement.csv` }, "agreement.csv"),
    ),
  );

  let polling: ReturnType<typeof setTimeout> | null = null;
  const renderImports = async () => {
    const jobs = await api.imports(id).catch(() => []);
    const files = h("input", {
      id: "import-files",
      type: "file",
      multiple: true,
      accept: ".dcm,.zip,application/dicom,application/zip",
    });
    const errors = h("div", { "aria-live": "assertive" });
    const running = jobs.some(
      (j) => j.status === "queued" || j.status === "running" || j.status === "pending",
    );
    importBox.replaceChildren(
      h("h2", null, "Study import"),
      h(
        "form",
        {
          class: "form-row",
          onsubmit: (e: Event) => {
            e.preventDefault();
            if (!files.files?.length) return;
            void guarded(errors, async () => {
              await api.importUpload(id, files.files as FileList);
              await renderImports();
              await renderCases();
            });
          },
        },
        field("DICOM files or zips", files),
        h("button", { type: "submit" }, "Upload and import"),
      ),
      errors,
      jobs.length
        ? h(
            "table",
            { class: "table", "data-testid": "imports" },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["Import", "Status", "Progress", "Problems"].map((c) => h("th", { scope: "col" }, c)),
              ),
            ),
            h(
              "tbody",
              null,
              jobs.slice(0, 10).map((j) =>
                h(
                  "tr",
                  null,
                  h("td", null, `#${j.id} ${j.source}`),
                  h("td", null, j.status + (j.error ? `: ${j.error}` : "")),
                  h(
                    "td",
                    null,
                    h("progress", {
                      max: j.total || 1,
                      value: j.done,
                      "aria-label": `Import ${j.id} progress`,
                    }),
                    ` ${j.done}/${j.total}`,
                  ),
                  h(
                    "td",
                    null,
                    j.problems.length
                      ? j.problems
                          .slice(0, 3)
                          .map((pr) => Object.values(pr).join(": "))
                          .join("; ")
                      : "none",
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "sub" }, "No imports yet."),
    );
    if (polling) clearTimeout(polling);
    polling = running && importBox.isConnected ? setTimeout(() => void renderImports(), 1000) : null;
  };

  const renderMembers = async (note?: string) => {
    const members = await api.members(id);
    const username = h("input", { id: "member-username", required: true });
    const role = h(
      "select",
      { id: "member-role" },
      ["reader", "adjudicator", "admin"].map((r) => h("option", { value: r }, r)),
    );
    const errors = h("div", { "aria-live": "assertive" });
    membersBox.replaceChildren(
      h("h2", null, "Members"),
      h(
        "table",
        { class: "table" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, "User"),
            h("th", { scope: "col" }, "Role"),
            h("th", { scope: "col" }, "Open assignments"),
            h("th", { scope: "col" }, ""),
          ),
        ),
        h(
          "tbody",
          null,
          members.map((m) =>
            h(
              "tr",
              null,
              h("td", null, m.username),
              h("td", null, m.role),
              h("td", null, m.role === "reader" ? String(m.open_assignments ?? 0) : ""),
              h(
                "td",
                null,
                h(
                  "button",
                  {
                    type: "button",
                    "aria-label": `Remove ${m.username} (${m.role})`,
                    onclick: () =>
                      void guarded(errors, async () => {
                        let result = "";
                        const confirmed = await confirmDialog({
                          title: `Remove ${m.username}`,
                          body: removeMemberQuestion(m),
                          confirmLabel:
                            m.role === "reader" && m.open_assignments ? "Remove and cancel" : "Remove",
                          onConfirm: async () => {
                            result = removeMemberResult(await api.memberRemove(id, m.id));
                          },
                        });
                        if (!confirmed) return;
                        // cancelled assignments change the case and assignment counts too
                        await Promise.all([renderMembers(result), renderCases(), renderAssignments()]);
                      }),
                  },
                  "Remove",
                ),
              ),
            ),
          ),
        ),
      ),
      h(
        "form",
        {
          class: "form-row",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void guarded(errors, async () => {
              await api.memberAdd(id, username.value, role.value as Member["role"]);
              await renderMembers();
            });
          },
        },
        field("Username", username),
        field("Role", role),
        h("button", { type: "submit" }, "Add member"),
      ),
      errors,
    );
    if (note) errors.append(message(note));
  };

  const renderCases = async () => {
    // only studies the project's scheme can grade (the API refuses the others as well)
    const [cases, studies] = await Promise.all([
      api.cases(id),
      api.studies(project.modality).catch(() => []),
    ]);
    const used = new Set(cases.map((c) => c.study_uid));
    const free = studies.filter((st) => !used.has(st.study_uid));
    const study = h(
      "select",
      { id: "case-study" },
      free.map((st) =>
        h("option", { value: st.study_uid }, `${st.patient_id || st.study_uid} (${st.modality})`),
      ),
    );
    const labelInput = h("input", { id: "case-label" });
    const errors = h("div", { "aria-live": "assertive" });
    casesBox.replaceChildren(
      h("h2", null, `Cases (${cases.length})`),
      h(
        "table",
        { class: "table" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Label", "Study", "Assignments", "Readings", ""].map((c) => h("th", { scope: "col" }, c)),
          ),
        ),
        h(
          "tbody",
          null,
          cases.map((c) =>
            h(
              "tr",
              null,
              h("td", null, c.label ?? ""),
              h("td", null, c.study_uid.slice(-16)),
              h("td", null, String(c.n_assignments)),
              h("td", null, String(c.n_readings)),
              h(
                "td",
                null,
                h(
                  "a",
                  {
                    href: `/manage/projects/${id}/cases/${c.id}/preview`,
                    "aria-label": `Preview case ${c.label}`,
                  },
                  "Preview",
                ),
              ),
            ),
          ),
        ),
      ),
      free.length
        ? h(
            "form",
            {
              class: "form-row",
              onsubmit: (e: Event) => {
                e.preventDefault();
                void guarded(errors, async () => {
                  await api.caseCreate(id, study.value, labelInput.value);
                  await renderCases();
                });
              },
            },
            field("Study", study),
            field("Label", labelInput),
            h("button", { type: "submit" }, "Add case"),
          )
        : h(
            "p",
            { class: "sub" },
            `Every imported ${modalityName(project.modality)} study is a case of this project (import studies above, or with manage.py import_studies).`,
          ),
      errors,
    );
  };

  const renderAssignments = async (note?: string) => {
    const assignments = await api.assignments(id);
    const num = (idName: string, value: number, step = "1") =>
      h("input", { id: idName, type: "number", step, value: String(value) });
    const seed = num("gen-seed", 1);
    const k = num("gen-k", project.readers_per_case ?? 3);
    const gold = num("gen-gold", project.gold_fraction ?? 0, "0.05");
    const rep = num("gen-repeat", project.repeat_fraction ?? 0, "0.05");
    const wd = num("gen-wdays", project.washout_days ?? 0);
    const wc = num("gen-wcases", project.washout_cases ?? 0);
    const errors = h("div", { "aria-live": "assertive" });
    const byStatus: Record<string, number> = {};
    for (const a of assignments) byStatus[a.status ?? "open"] = (byStatus[a.status ?? "open"] ?? 0) + 1;
    assignBox.replaceChildren(
      h("h2", null, `Assignments (${assignments.length})`),
      h(
        "p",
        { class: "sub" },
        Object.entries(byStatus)
          .map(([k2, v]) => `${k2}: ${v}`)
          .join(" · ") || "none yet",
      ),
      h(
        "form",
        {
          class: "form-row",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void guarded(errors, async () => {
              const out = await api.generate(id, {
                seed: Number(seed.value),
                readers_per_case: Number(k.value),
                gold_fraction: Number(gold.value),
                repeat_fraction: Number(rep.value),
                washout_days: Number(wd.value),
                washout_cases: Number(wc.value),
              });
              // the message goes into the re-rendered form; the cases' assignment counts and the readers'
              // open assignments (what removing one would cancel) change too
              await Promise.all([renderAssignments(generateResult(out)), renderCases(), renderMembers()]);
            });
          },
        },
        field("Seed", seed),
        field("Readers per case", k),
        field("Gold fraction", gold),
        field("Repeat fraction", rep),
        field("Wash-out days", wd),
        field("Wash-out cases", wc),
        h("button", { type: "submit", class: "primary" }, "Generate assignments"),
      ),
      errors,
    );
    if (note) errors.append(message(note));
  };

  const renderSettings = (note?: string) => {
    const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
    const current = project as unknown as Record<string, unknown>;
    const rows = SETTING_FIELDS.map((f) => {
      const idName = `setting-${f.key}`;
      let input: HTMLInputElement | HTMLSelectElement;
      if (f.kind === "choice") {
        input = h(
          "select",
          { id: idName },
          (f.choices ?? []).map(([value, text]) =>
            h("option", { value, selected: current[f.key] === value }, text),
          ),
        );
      } else if (f.kind === "bool") {
        input = h("input", { id: idName, type: "checkbox", checked: Boolean(current[f.key]) });
      } else if (f.kind === "conditions") {
        const choices = project.condition_choices ?? [];
        input = h("input", {
          id: idName,
          type: "text",
          value: conditionsText(project.reader_study_conditions),
          placeholder: conditionsText(project.study_conditions) || "e.g. unaided, aided",
          "aria-describedby": `${idName}-help`,
        });
        inputs.set(f.key, input);
        return field(
          f.label,
          h(
            "span",
            null,
            input,
            h(
              "small",
              { id: `${idName}-help`, class: "sub" },
              `Known: ${choices.map((c) => `${c.name} (${c.label}: ${c.description})`).join("; ")}.`,
            ),
          ),
        );
      } else {
        input = h("input", {
          id: idName,
          type: f.kind === "text" ? "text" : "number",
          step: f.step ?? (f.kind === "int" ? "1" : undefined),
          min: f.min,
          max: f.max,
          value: String(current[f.key] ?? ""),
        });
      }
      inputs.set(f.key, input);
      return field(f.label, input);
    });
    const errors = h("div", { "aria-live": "assertive" });
    const raw = () =>
      Object.fromEntries(
        [...inputs].map(([k, el]) => [
          k,
          el instanceof HTMLInputElement && el.type === "checkbox" ? String(el.checked) : el.value,
        ]),
      );
    settingsBox.replaceChildren(
      h("h2", null, "Project settings"),
      h(
        "form",
        {
          class: "form-grid",
          "aria-label": "Project settings",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void guarded(errors, async () => {
              const parsed = settingsChanges(project, raw());
              if ("error" in parsed) throw new Error(parsed.error);
              if (!Object.keys(parsed.changes).length) {
                errors.append(message("Nothing changed."));
                return;
              }
              const before = project;
              project = await api.projectUpdate(id, parsed.changes);
              renderHead();
              // the assignment form starts from the project's settings: it is re-rendered before "Saved"
              // shows, so that a Generate right after the message uses the saved wash-out, not the old one
              await renderAssignments();
              renderSettings(`Saved: ${describeChanges(before, parsed.changes)}.`);
            });
          },
        },
        rows,
        h("div", { class: "form-row" }, h("button", { type: "submit", class: "primary" }, "Save settings")),
      ),
      errors,
      h("h3", null, "Delete this project"),
      h(
        "p",
        { class: "sub" },
        "The project disappears from every list and takes no new work: readers can no longer open its cases. Its cases, readings, adjudications and audit trail are kept.",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: () =>
            void guarded(errors, async () => {
              const deleted = await confirmDialog({
                title: `Delete ${project.name}`,
                body: "The project will be hidden from every list and take no new work; open assignments can no longer be read. Its records are kept and the deletion is audited.",
                confirmLabel: "Delete project",
                typeToConfirm: project.name,
                onConfirm: async () => {
                  await api.projectDelete(id);
                },
              });
              if (!deleted) return;
              toast(`Project ${project.name} deleted; its records are kept.`);
              navigate("/manage");
            }),
        },
        "Delete project…",
      ),
    );
    if (note) errors.append(message(note));
  };
  renderSettings();
  await Promise.all([renderMembers(), renderCases(), renderAssignments(), renderImports()]);
}
