"""The smaller findings of issue 15 (finding 11) that only a browser shows: the agreement page's ICC line and
charts, the WebGL contexts left behind by case switches, the radio buttons' size, the images at 1024 px.
Logged in through the real login form; one seeded server for the module (see conftest.site)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Site, log_in_through_the_form, shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

WEBGL_WARNING = "Too many active WebGL contexts"


def _logged_in(new_page, site: Site, username: str, path: str, viewport=(1400, 860)) -> Any:
    """A logged-out visit to ``path``; the login form (typed key by key) brings the user back there."""
    page = new_page(None, viewport=viewport)
    page.goto(f"{site.base}{path}")
    log_in_through_the_form(page, username)
    page.wait_for_url(f"{site.base}{path}")
    return page


def test_agreement_page_says_why_the_icc_is_undefined_and_its_charts_fill_the_card(
    site: Site, new_page
) -> None:
    # Nobody has read the MRI project's case: no ICC, and the page says why instead of "– [–, –]".
    page = _logged_in(new_page, site, "admin", f"/manage/projects/{site.data.mri_project}/agreement")
    header = page.locator("p.sub:has-text('total score ICC')")
    header.wait_for(timeout=60_000)
    text = header.inner_text()
    print(f"ICC line: {text!r}")
    assert "not enough cases read by 2+ readers" in text and "[–, –]" not in text
    # The training project has readings: forest plots as wide as their card, text of 12 px or more.
    page.goto(f"{site.base}/manage/projects/{site.data.train_project}/agreement")
    page.wait_for_selector("figure.chart[data-lesion] svg", timeout=60_000)
    page.wait_for_timeout(300)  # the charts redraw at their card's width once laid out
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('figure.chart[data-lesion]')].map((f) => {
            const inner = f.clientWidth - parseFloat(getComputedStyle(f).paddingLeft)
                - parseFloat(getComputedStyle(f).paddingRight);
            const svg = f.querySelector('svg');
            const fonts = [...svg.querySelectorAll('text')].map((t) => parseFloat(getComputedStyle(t).fontSize));
            return {card: inner, svg: svg.getBoundingClientRect().width, font: Math.min(...fonts)};
        })"""
    )
    print(f"forest plots: {sizes[:2]}")
    assert sizes
    for s in sizes:
        assert s["svg"] >= 0.95 * s["card"], f"chart {s['svg']:.0f} px wide in a {s['card']:.0f} px card"
        assert s["font"] >= 12, f"chart text {s['font']} px"
    shot(page, "smaller-agreement", full_page=True)
    assert page.errors == []


def test_five_case_switches_leave_no_webgl_context_behind(site: Site, new_page) -> None:
    mri = f"/read/{site.data.assignments['mri:reader1']}"
    ct = f"/read/{site.data.assignments['ct:reader1']}"
    page = _logged_in(new_page, site, "reader1", mri)
    warnings: list[str] = []
    page.on("console", lambda m: WEBGL_WARNING in m.text and warnings.append(m.text))
    page.wait_for_selector("[data-first-image-ms]")
    print(
        f"WebGL available: {page.evaluate('() => !!document.createElement(`canvas`).getContext(`webgl2`)')}"
    )
    for i, path in enumerate([ct, mri, ct, mri, ct]):
        # what a link in the app does: the router's history navigation, no page load
        page.evaluate(
            "(p) => { history.pushState(null, '', p); dispatchEvent(new PopStateEvent('popstate')); }", path
        )
        page.wait_for_selector("[data-first-image-ms]", timeout=30_000)
        page.wait_for_timeout(200)
        assert page.locator(".pane").count() >= 1, f"no image pane after switch {i + 1}"
    print(f"WebGL warnings after 5 switches: {warnings}")
    assert warnings == []
    assert page.errors == []


def test_radio_buttons_are_20_px_and_two_images_stay_wide_at_1024_px(site: Site, new_page) -> None:
    page = _logged_in(
        new_page, site, "reader1", f"/read/{site.data.assignments['mri:reader1']}", viewport=(1024, 768)
    )
    page.wait_for_selector("[data-first-image-ms]")
    radio = page.locator(".grid input[type=radio]").first.bounding_box()
    print(f"radio {radio['width']:.0f}x{radio['height']:.0f} px")
    assert radio["width"] >= 20 and radio["height"] >= 20
    panes = page.evaluate(
        "() => [...document.querySelectorAll('.pane')].map((p) => "
        "{ const r = p.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; })"
    )
    print(f"panes at 1024x768: {panes}")
    assert len(panes) >= 2
    for width, height in panes:
        assert width >= 450 and height >= 450, f"a pane of {width}x{height} px at 1024 px"
    # the lower pane is reachable by scrolling the images column, and it renders
    page.locator(".pane").nth(1).scroll_into_view_if_needed()
    shot(page, "smaller-1024")
    assert page.errors == []
