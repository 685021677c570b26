import "./styles.css";
import { api } from "./api";
import { setUnauthorisedHandler } from "./api/client";
import { contourDisputeView } from "./features/adjudication/contourDispute";
import { adjudicationItemView, adjudicationQueueView } from "./features/adjudication/views";
import { agreementView } from "./features/admin/agreement";
import { casePreviewView } from "./features/admin/preview";
import { manageProjectsView, manageProjectView } from "./features/admin/projects";
import { readerStudyView } from "./features/admin/readerStudy";
import { trainingView } from "./features/admin/training";
import { loginView } from "./features/auth/login";
import { loginPath } from "./features/auth/next";
import { homeView } from "./features/home";
import { readingView } from "./features/reading/controller";
import { readingReviewView } from "./features/worklist/readings";
import { worklistView } from "./features/worklist/view";
import { installNavigate } from "./nav";
import { Router, type View } from "./router";
import { startEarly } from "./early";
import { forgetPrefetched } from "./prefetch";
import { canManage, forget, me } from "./session";
import { h, message } from "./ui/dom";

// First of all: what the view of this address will need (the case data, the viewer's chunk) starts now,
// alongside the /api/auth/me/ call of the view below.
startEarly(location.pathname);

const userSlot = h("span", { class: "user" });
/** Only for staff and project admins: readers and logged-out visitors have nothing to manage. */
const manageLink = h("a", { href: "/manage", hidden: true }, "Manage");
const bar = h(
  "header",
  { class: "topbar" },
  h("a", { href: "#main", class: "skip" }, "Skip to content"),
  h("a", { href: "/", class: "brand" }, "Concord"),
  h("nav", { "aria-label": "Main" }, h("a", { href: "/" }, "Projects"), manageLink),
  userSlot,
);
const outlet = h("div", { class: "outlet" });
document.getElementById("app")!.append(bar, outlet);

/** Off to the login page, which brings the user back here (path and query) afterwards. */
const toLogin = () => {
  if (location.pathname !== "/login") navigate(loginPath(location.pathname, location.search), true);
};

/** Views behind a login: send anonymous users to /login?next=… */
const authed =
  (view: View): View =>
  async (el, params) => {
    const user = await me();
    if (!user) {
      toLogin(); // the 401 of me() may have sent them already: then the address is the login page's
      return;
    }
    manageLink.hidden = !canManage(user);
    userSlot.replaceChildren(
      h("span", null, user.username),
      h(
        "button",
        {
          type: "button",
          class: "link",
          onclick: async () => {
            await api.logout().catch(() => undefined);
            forget();
            navigate("/login");
          },
        },
        "Log out",
      ),
    );
    try {
      return await view(el, params);
    } catch (e) {
      el.append(message(e instanceof Error ? e.message : String(e), "error"));
    }
  };

const router = new Router(outlet, (el) => {
  el.append(
    h(
      "main",
      { class: "page", id: "main" },
      h("h1", null, "Not found"),
      h("p", null, h("a", { href: "/" }, "Back to the projects")),
    ),
  );
});
const navigate = (path: string, replace = false) => router.go(path, replace);
installNavigate(navigate);
setUnauthorisedHandler(() => {
  forget();
  toLogin();
});

router
  .add("/login", (el) => {
    userSlot.replaceChildren();
    manageLink.hidden = true;
    loginView(el);
  })
  .add("/", authed(homeView))
  .add("/projects/:id/worklist", authed(worklistView))
  .add("/read/:assignment", authed(readingView))
  .add("/projects/:id/readings/:key/:version", authed(readingReviewView))
  .add("/projects/:id/adjudication", authed(adjudicationQueueView))
  .add("/projects/:id/adjudication/contours/:case/:joint/:slice", authed(contourDisputeView))
  .add("/projects/:id/adjudication/:case/:joint/:region/:lesion", authed(adjudicationItemView))
  .add("/manage", authed(manageProjectsView))
  .add("/manage/projects/:id", authed(manageProjectView))
  .add("/manage/projects/:id/agreement", authed(agreementView))
  .add("/manage/projects/:id/reader-study", authed(readerStudyView))
  .add("/manage/projects/:id/training", authed(trainingView))
  .add("/manage/projects/:id/cases/:case/preview", authed(casePreviewView));

// Answers started above and not taken by the first view are dropped: a later view asks afresh.
void router.render().finally(forgetPrefetched);
