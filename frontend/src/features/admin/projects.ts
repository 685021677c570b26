// Admin: projects, members and roles, cases, assignment generation.
import { api, type Member } from "../../api";
import { ApiError } from "../../api/client";
import { navigate } from "../../nav";
import type { Params } from "../../router";
import { me } from "../../session";
import { h, message } from "../../ui/dom";

function field(labelText: string, input: HTMLElement): HTMLElement {
  return h("label", null, labelText, input);
}

async function guarded(errors: HTMLElement, fn: () => Promise<void>): Promise<void> {
  errors.replaceChildren();
  try {
    await fn();
  } catch (e) {
    errors.append(
      message(e instanceof ApiError ? `${e.detail}${e.field ? ` (${e.field})` : ""}` : String(e), "error"),
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
  const project = await api.project(id);
  const membersBox = h("div");
  const casesBox = h("div");
  const assignBox = h("div");
  const importBox = h("div");
  main.append(
    h("h1", null, `${project.name}`),
    h(
      "p",
      { class: "sub" },
      `${project.scheme} · ${project.readers_per_case} readers per case · gold ${project.gold_fraction} · repeats ${project.repeat_fraction} · `,
      h("a", { href: `/manage/projects/${id}/agreement` }, "Agreement dashboard"),
      " · ",
      h("a", { href: `/manage/projects/${id}/reader-study` }, "Reader study"),
      " · ",
      h("a", { href: `/manage/projects/${id}/training` }, "Training and models"),
    ),
    h(
      "div",
      { class: "cols" },
      h("section", { "aria-label": "Members" }, membersBox),
      h("section", { "aria-label": "Cases" }, casesBox),
    ),
    h("section", { "aria-label": "Study import" }, importBox),
    h("section", { "aria-label": "Assignments" }, assignBox),
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

  const renderMembers = async () => {
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
                        await api.memberRemove(id, m.id);
                        await renderMembers();
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
  };

  const renderCases = async () => {
    const [cases, studies] = await Promise.all([api.cases(id), api.studies().catch(() => [])]);
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
            "Every imported study is a case (import studies with manage.py import_studies).",
          ),
      errors,
    );
  };

  const renderAssignments = async () => {
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
              await renderAssignments();
              errors.append(
                message(
                  `Created ${out.created} assignment(s), ${out.created_repeats} repeat(s), ${out.gold_cases} gold case(s).`,
                ),
              );
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
  };
  await Promise.all([renderMembers(), renderCases(), renderAssignments(), renderImports()]);
}
