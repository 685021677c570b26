"""The admin's guards and feedback (issue 15, finding 10), through the login form and real clicks: studies of
the project's modality only, a result message after generating assignments with fresh counts, a confirmation
that names what removing a reader cancels, project settings edited, and deletion confirmed by the name."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Site, axe_serious, log_in_through_the_form, project_create, shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

NAME = "E2E Admin guards"


def _retype(page: Any, selector: str, text: str) -> None:
    """Select the field's content with the mouse and keyboard and type over it, as a person does."""
    page.click(selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_admin_guards_and_feedback(site: Site, new_page) -> None:
    from playwright.sync_api import expect

    api = site.api("admin")
    pid = project_create(site, api, {"name": NAME, "scheme": "mri_sij", "readers_per_case": 2})

    page = new_page(None)
    page.goto(f"{site.base}/manage/projects/{pid}")
    log_in_through_the_form(page, "admin")
    page.wait_for_url(f"{site.base}/manage/projects/{pid}")
    page.wait_for_selector(f"h1:text-is('{NAME}')")
    page.wait_for_selector("td:text-is('reader2')")

    # Add case: an MRI project offers MR studies only (the CT study of the site is not among them).
    page.wait_for_selector("#case-study")
    offered = page.locator("#case-study option").all_inner_texts()
    assert offered and all(o.endswith("(MR)") for o in offered), offered
    page.select_option("#case-study", site.data.mri_study)
    page.click("button:text-is('Add case')")
    page.wait_for_selector("h2:text-is('Cases (1)')")

    # Generate assignments: a result message, and the counts of both tables follow.
    page.click("button:text-is('Generate assignments')")
    page.wait_for_selector("text=Created 2 assignments.")
    page.wait_for_selector("h2:text-is('Assignments (2)')")
    cases = page.locator("section[aria-label=Cases] tbody tr")
    # The tables refresh one after the other: wait for the case's count rather than read it once.
    expect(cases).to_have_count(1)
    expect(cases.first.locator("td").nth(2)).to_have_text("2")
    reader1 = page.locator("section[aria-label=Members] tbody tr", has=page.locator("td:text-is('reader1')"))
    expect(reader1.locator("td").nth(2)).to_have_text("1")  # open assignments, what removing would cancel

    # Remove member: a confirmation naming what will be cancelled; Cancel keeps everything.
    page.click("button[aria-label='Remove reader1 (reader)']")
    dialog = page.locator("dialog.confirm")
    dialog.wait_for()
    assert dialog.locator("[data-testid=confirm-body]").inner_text() == (
        "Remove reader1 as reader? Their 1 open assignment will be cancelled; their submitted readings stay."
    )
    assert axe_serious(page) == []
    shot(page, "20-admin-remove-member-confirm")
    dialog.locator("button:text-is('Cancel')").click()
    dialog.wait_for(state="detached")
    assert page.locator("td:text-is('reader1')").count() == 1
    page.click("button[aria-label='Remove reader1 (reader)']")
    page.locator("dialog.confirm button:text-is('Remove and cancel')").click()
    page.wait_for_selector("text=Removed reader1 as reader; 1 open assignment cancelled.")
    page.wait_for_selector("td:text-is('reader1')", state="detached")
    page.wait_for_selector("section[aria-label=Assignments] >> text=cancelled: 1")
    page.wait_for_function(
        "() => document.querySelector('section[aria-label=Cases] tbody tr td:nth-child(3)')"
        "?.textContent === '1'"
    )

    # Project settings: edit and save; the header and a reload show the new values.
    _retype(page, "#setting-description", "Second reading wave")
    _retype(page, "#setting-readers_per_case", "3")
    page.click("#setting-ai_aided_reads")
    page.click("button:text-is('Save settings')")
    page.wait_for_selector(
        "text=Saved: description changed, readers per case 2 → 3, ai-aided reads off → on."
    )
    page.wait_for_selector("text=3 readers per case")
    shot(page, "21-admin-settings-saved", full_page=True)
    page.reload()
    page.wait_for_selector("#setting-readers_per_case")
    assert page.input_value("#setting-readers_per_case") == "3"
    assert page.input_value("#setting-description") == "Second reading wave"
    assert page.is_checked("#setting-ai_aided_reads")

    # Delete: the button stays disabled until the project's name is typed exactly.
    page.click("button:text-is('Delete project…')")
    confirm = page.locator("dialog.confirm button:text-is('Delete project')")
    assert confirm.is_disabled()
    page.click("#confirm-typed")
    page.keyboard.type(NAME[:-1])
    assert confirm.is_disabled()
    shot(page, "22-admin-delete-confirm")
    page.keyboard.type(NAME[-1])
    assert confirm.is_enabled()
    confirm.click()
    page.wait_for_url(f"{site.base}/manage")
    page.wait_for_selector(f"text=Project {NAME} deleted; its records are kept.")
    page.wait_for_selector("h1:text-is('Manage projects')")
    page.wait_for_selector("ul.projects li")
    assert page.locator(f"ul.projects >> text={NAME}").count() == 0
    assert api.get(f"{site.base}/api/projects/{pid}/", timeout=10).status_code == 404
    events = api.get(f"{site.base}/api/audit/?limit=500", timeout=10).json()["results"]
    assert any(e["action"] == "project.delete" and e["project_id"] == pid for e in events)
    assert page.errors == []
