// Home: the user's projects with a link per role they hold.
import { api } from "../api";
import { me, rolesIn } from "../session";
import { h, message } from "../ui/dom";

export async function homeView(outlet: HTMLElement): Promise<void> {
  const user = await me();
  if (!user) return;
  const main = h("main", { class: "page", id: "main" }, h("h1", null, "Projects"));
  outlet.append(main);
  const projects = await api.projects();
  if (!projects.length) {
    main.append(
      message(
        user.is_staff
          ? "No projects yet — create one under Manage."
          : "You are not a member of any project yet.",
      ),
    );
  }
  main.append(
    h(
      "ul",
      { class: "projects" },
      projects.map((p) => {
        const roles = rolesIn(user, p.id);
        return h(
          "li",
          { class: "card" },
          h("h2", null, p.name),
          h("p", { class: "sub" }, `${p.scheme} · ${roles.join(", ") || (user.is_staff ? "staff" : "")}`),
          h(
            "p",
            { class: "links" },
            roles.includes("reader") ? h("a", { href: `/projects/${p.id}/worklist` }, "My worklist") : null,
            roles.includes("adjudicator")
              ? h("a", { href: `/projects/${p.id}/adjudication` }, "Adjudication queue")
              : null,
            roles.includes("admin") || user.is_staff
              ? h("a", { href: `/manage/projects/${p.id}` }, "Manage")
              : null,
            roles.includes("admin") || user.is_staff
              ? h("a", { href: `/manage/projects/${p.id}/agreement` }, "Agreement")
              : null,
          ),
        );
      }),
    ),
  );
}
