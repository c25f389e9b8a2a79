"""The researcher's side and accessibility in a real browser (headless Chromium, Playwright).

* Every participant page is checked with axe-core (vendored in tests/vendor/axe-core):
  no serious or critical violation is allowed.
* Pilot mode, the launch checklist in the admin and the analysis page are driven as a
  researcher would: logged in, clicking the real buttons.
* ``UPDATE_SCREENSHOTS=1`` writes every page to docs/screenshots/.

Rankings run eagerly inside the live server thread, as in tests/studyapp/test_browser.py,
whose browser fixtures this module reuses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studyapp import simulation
from studyapp.models import Participant, QuestionnaireItem, Study
from tests.studyapp.test_browser import (  # noqa: F401 - fixtures used by name
    TIMEOUT_MS,
    _expect,
    allow_orm_beside_playwright,
    chromium_browser,
    make_request,
    rate,
    shown_slot_pks,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "tests" / "vendor" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
FILLED_TEXTS = {
    "consent_text": "Who runs this study: Example University. Contact: study@example.org.\n\nTaking part is voluntary.",
    "debrief_text": "The two lists came from two recommender systems. Contact: study@example.org.",
}


@pytest.fixture
def browse(chromium_browser, live_server, tmp_path: Path) -> Iterator[Callable]:  # type: ignore[no-untyped-def]  # noqa: F811
    """Open pages in fresh browser contexts; JS errors and unexpected 4xx/5xx fail the test.

    ``browse(path, staff=True)`` logs the context in as a staff user (session cookie).
    Tests that provoke a refusal on purpose add its status to ``browse.allowed``.
    """
    contexts = []
    problems: list[str] = []
    allowed: set[int] = set()

    def _open(path: str = "", staff: bool = False, **context_args):  # type: ignore[no-untyped-def]
        context = chromium_browser.new_context(base_url=live_server.url, **context_args)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        if staff:
            user, _ = get_user_model().objects.get_or_create(
                username="researcher", defaults={"is_staff": True, "is_superuser": True}
            )
            client = Client()
            client.force_login(user)
            context.add_cookies(
                [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
            )
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"JS error: {exc}"))
        page.on(
            "response",
            lambda r: (
                problems.append(f"HTTP {r.status} {r.request.method} {r.url}")
                if r.status >= 400 and r.status not in allowed
                else None
            ),
        )
        if path:
            page.goto(path)
        return page

    _open.allowed = allowed  # type: ignore[attr-defined]
    yield _open
    for context in contexts:
        context.close()
    assert problems == []


def check_accessible(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Run axe-core on the page as it is now; fail on serious or critical violations."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    serious = [v for v in violations if v["impact"] in SERIOUS]
    assert serious == [], f"{name}: {serious}"


def shoot(page, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Write docs/screenshots/NAME.png, only with UPDATE_SCREENSHOTS=1 (full-page PNGs cost CI time)."""
    if os.environ.get("UPDATE_SCREENSHOTS") != "1":
        return
    folder = REPO / "docs" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True, animations="disabled")


def page_check(page, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    check_accessible(page, name)
    shoot(page, name, tmp_path)


@pytest.fixture
def full_study(study: Study) -> Study:
    """Every participant-facing feature on: practice, attention checks, list preference, questions."""
    Study.objects.filter(pk=study.pk).update(
        title="WhisperLite fashion study", practice_request=True, attention_checks=True,
        ask_list_preference=True, requests_per_participant=1, **FILLED_TEXTS,
    )  # fmt: skip
    QuestionnaireItem.objects.create(
        study=study, text="Overall, the items in the two lists matched my requests."
    )
    study.refresh_from_db()
    return study


def rate_everything(page, study: Study, request) -> None:  # type: ignore[no-untyped-def]
    checks = set(request.slots.filter(is_attention_check=True).values_list("pk", flat=True))
    for slot_pk in shown_slot_pks(page):
        rate(page, slot_pk, "0" if slot_pk in checks else "2")
    page.get_by_role("button", name="List A").click()


# --- Accessibility of every participant page ----------------------------------------------


def test_every_participant_page_has_no_serious_accessibility_violation(
    browse, full_study: Study, tmp_path: Path
) -> None:
    expect = _expect()
    browse.allowed.add(400)  # the inline errors below are provoked on purpose
    page = browse(f"/s/{full_study.token}/", viewport={"width": 1280, "height": 900})
    expect(page.get_by_role("heading", name="Before you start")).to_be_visible()
    expect(page.locator("#duration")).to_contain_text("This study takes about")
    page_check(page, "consent", tmp_path)
    page.get_by_role("button", name="I agree, start").click()
    expect(page.get_by_role("heading", name="What do you like?")).to_be_visible()
    page_check(page, "onboarding", tmp_path)
    page.get_by_role("button", name="Continue").click()  # no picks yet
    expect(page.locator("#action-error")).to_contain_text("Please pick at least 3 items")
    expect(page.get_by_role("progressbar")).to_be_visible()
    page_check(page, "onboarding-error", tmp_path)
    for item_id in page.locator("li.pick").evaluate_all("els => els.slice(0, 3).map(e => e.id)"):
        page.locator(f"#{item_id} button").click()
        expect(page.locator(f"#{item_id} button")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="How it works")).to_be_visible()
    page_check(page, "instructions", tmp_path)
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", name="Practice request")).to_be_visible()
    page_check(page, "request-form", tmp_path)
    practice = make_request(page, "a light linen shirt for a beach wedding")
    page_check(page, "lists-practice", tmp_path)
    rate_everything(page, full_study, practice)
    page.get_by_role("button", name="Start the real requests").click()
    expect(page.get_by_role("heading", name="Request 1 of 1")).to_be_visible()
    request = make_request(page, "warm winter boots for hiking")
    rate(page, shown_slot_pks(page)[0], "3")
    page.get_by_role("button", name="Finish").click()  # too early: the rest is unrated
    expect(page.locator("#action-error")).to_contain_text("Please rate every item first")
    expect(page.get_by_role("progressbar")).to_be_visible()
    page_check(page, "lists-error", tmp_path)
    rate_everything(page, full_study, request)
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("heading", name="A few questions")).to_be_visible()
    page_check(page, "questionnaire", tmp_path)
    page.get_by_label("4").check()
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_have_count(1)
    expect(page.get_by_text("Thank you!")).to_have_count(1)  # said once, not again in the debrief
    expect(page.get_by_role("button", name="Copy code")).to_be_visible()
    page_check(page, "finish", tmp_path)

    declined = browse(f"/s/{full_study.token}/")
    declined.get_by_role("button", name="I do not agree").click()
    expect(declined.get_by_role("heading", name="You did not agree to take part")).to_be_visible()
    page_check(declined, "declined", tmp_path)

    screened = Participant.objects.filter(study=full_study).latest("number")
    Participant.objects.filter(pk=screened.pk).update(phase=Participant.Phase.SCREENED_OUT)
    declined.goto(f"/p/{screened.token}/")
    expect(declined.get_by_role("heading", name="Thank you for your time")).to_be_visible()
    page_check(declined, "screened-out", tmp_path)

    browse.allowed.add(403)
    Study.objects.filter(pk=full_study.pk).update(status=Study.Status.CLOSED)
    closed = browse(f"/s/{full_study.token}/")
    page_check(closed, "closed", tmp_path)


# --- Pilot mode -----------------------------------------------------------------------------


def test_researcher_previews_as_pilot_then_deletes_the_pilot_data(
    browse, full_study: Study, tmp_path: Path
) -> None:
    expect = _expect()
    Study.objects.filter(pk=full_study.pk).update(status=Study.Status.DRAFT, practice_request=False)
    researcher = browse(
        f"/researcher/studies/{full_study.pk}/", staff=True, viewport={"width": 1280, "height": 900}
    )
    expect(researcher.get_by_role("heading", name="WhisperLite fashion study")).to_be_visible()
    with researcher.context.expect_page() as popup:
        researcher.get_by_role("button", name="Preview as participant").click()
    pilot = popup.value
    expect(pilot.get_by_role("heading", name="Before you start")).to_be_visible()
    expect(pilot.locator("#test-run-banner")).to_contain_text("Pilot (researcher preview)")
    pilot.get_by_role("button", name="I agree, start").click()
    for item_id in pilot.locator("li.pick").evaluate_all("els => els.slice(0, 3).map(e => e.id)"):
        pilot.locator(f"#{item_id} button").click()
        expect(pilot.locator(f"#{item_id} button")).to_have_attribute("aria-pressed", "true")
    pilot.get_by_role("button", name="Continue").click()
    pilot.get_by_role("button", name="Start").click()
    request = make_request(pilot, "a red summer dress")  # the live systems rank the pilot's request
    assert request.ranked_lists.count() == 2
    shoot(pilot, "pilot-lists", tmp_path)

    researcher.reload()
    expect(researcher.locator("#n-participants")).to_have_text("0")  # the pilot is not a participant
    expect(researcher.locator("#delete-test-runs")).to_contain_text("1 pilot, 0 simulated")
    page_check(researcher, "researcher-study-empty", tmp_path)
    full_study.refresh_from_db()
    assert not full_study.is_locked()
    researcher.get_by_role("button", name="Delete pilot and simulated data").click()
    researcher.get_by_role("button", name="Yes, delete pilot and simulated data").click()  # asked once more
    expect(researcher.get_by_text("Deleted 1 pilot/simulated participant.")).to_be_visible()
    assert not Participant.objects.filter(study=full_study).exists()

    docs = browse("/api/docs/", staff=True, viewport={"width": 1280, "height": 900})
    expect(docs.locator(".swagger-ui .info .title")).to_contain_text("WhisperLite Study API")  # no CDN needed
    shoot(docs, "api-docs", tmp_path)


# --- Launch checklist -------------------------------------------------------------------------


def test_admin_shows_the_launch_checklist_and_keeps_an_unready_study_in_draft(
    browse, study: Study, tmp_path: Path
) -> None:
    expect = _expect()
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)  # default texts: placeholders
    page = browse(
        f"/admin/studyapp/study/{study.pk}/change/", staff=True, viewport={"width": 1280, "height": 1000}
    )
    checklist = page.locator("#launch-checklist")
    expect(checklist).to_contain_text("Catalog imported")
    expect(checklist).to_contain_text("System loads: Zero-shot")
    expect(checklist).to_contain_text("replace the placeholders [Institution]")
    expect(checklist).to_contain_text("Estimated duration per participant")
    checklist.scroll_into_view_if_needed()
    shoot(page, "admin-launch-checklist", tmp_path)
    page.locator("#id_status").select_option("open")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("kept as a draft; the launch checklist failed")
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT

    page.locator("#id_consent_text").fill(FILLED_TEXTS["consent_text"])
    page.locator("#id_debrief_text").fill(FILLED_TEXTS["debrief_text"])
    page.locator("#id_status").select_option("open")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).not_to_contain_text("launch checklist failed")
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN


# --- Analysis page ----------------------------------------------------------------------------


def test_analysis_page_shows_tables_figures_and_downloads_after_simulation(
    browse, full_study: Study, tmp_path: Path
) -> None:
    expect = _expect()
    Study.objects.filter(pk=full_study.pk).update(requests_per_participant=2, practice_request=False)
    full_study.refresh_from_db()
    simulation.simulate(full_study, 4, seed=3, wait_seconds=120)
    page = browse(
        f"/researcher/studies/{full_study.pk}/", staff=True, viewport={"width": 1280, "height": 900}
    )
    expect(page.locator("#metrics-empty")).to_contain_text("No finished requests from participants yet")
    page.get_by_role("link", name="Simulated participants").click()
    expect(page.locator("#n-participants")).to_have_text("4")
    expect(page.locator("#n-analysed")).to_contain_text("requests")
    table = page.locator("#systems-table")
    expect(table.get_by_role("row")).to_have_count(3)  # header + two systems
    for name in ("metrics", "positions", "progress", "minutes"):
        figure = page.locator(f"#figure-{name} svg")
        expect(figure).to_be_visible()
        box = figure.bounding_box()
        assert box is not None and box["width"] > 300, name
    expect(page.locator("#figure-metrics svg")).to_contain_text("Zero-shot (n = 8 requests)")
    expect(page.locator("#quality tbody tr")).to_have_count(4)
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, f"the page runs off the screen: {width}"
    page_check(page, "researcher-analysis", tmp_path)
    with page.expect_download() as download:
        page.locator("#download-report").click()
    saved = tmp_path / "report.html"
    download.value.save_as(saved)
    html = saved.read_text()
    assert "Simulated participants" in html and html.count("<svg") == 4
    with page.expect_download() as png:
        page.locator("#figure-metrics").get_by_role("link", name="PNG").click()
    assert png.value.suggested_filename.endswith("-simulated-metrics.png")

    dashboard = browse("/researcher/", staff=True, viewport={"width": 1280, "height": 700})
    shoot(dashboard, "researcher-dashboard", tmp_path)
