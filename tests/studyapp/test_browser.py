"""The participant pages in a real browser: headless Chromium (Playwright, sync API) against
pytest-django's live server. Rankings run eagerly inside the live server thread, so each test
drives the whole stack: templates, htmx swaps, keyboard shortcuts, CSS on a phone viewport.

Without /usr/bin/chromium the tests are skipped locally and fail in CI (env ``CI`` set).
``UPDATE_SCREENSHOTS=1`` makes :func:`test_lists_page_screenshot` rewrite docs/screenshots/lists.png.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studyapp.models import Judgement, Participant, Request, Slot, Study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 30_000  # the first ranking of a session loads the encoder inside the live server


# --- Fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in this thread while the browser is open, and
    Django's ORM would refuse to run in the test body ("You cannot call this from an async
    context"). Scoped to this module so no other test runs with the guard off."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


# Module scope: the browser (and its event loop) is gone before any other module's tests run.
@pytest.fixture(scope="module")
def chromium_browser() -> Iterator:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium_browser, live_server) -> Iterator[Callable]:  # type: ignore[no-untyped-def]
    """Open a page in a fresh browser context (a separate "device": own cookies and storage).

    Uncaught JavaScript errors and failed responses (4xx/5xx) on any page fail the test.
    """
    contexts = []
    problems: list[str] = []

    def _open(path: str = "", **context_args):  # type: ignore[no-untyped-def]
        context = chromium_browser.new_context(base_url=live_server.url, **context_args)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"JS error: {exc}"))
        page.on("response", lambda r: _note_failed_response(r, problems))
        if path:
            page.goto(path)
        return page

    yield _open
    for context in contexts:
        context.close()
    assert problems == []


def _note_failed_response(response, problems: list[str]) -> None:  # type: ignore[no-untyped-def]
    if response.status >= 400 and not response.url.endswith("/favicon.ico"):
        problems.append(f"HTTP {response.status} {response.request.method} {response.url}")


def _expect():  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    return expect


# --- Steps -------------------------------------------------------------------------------


def start_study(open_page: Callable, study: Study, **context_args):  # type: ignore[no-untyped-def]
    """Study link → consent → three picks → instructions: returns the page at the request form."""
    expect = _expect()
    page = open_page(f"/s/{study.token}/", **context_args)
    expect(page.get_by_role("heading", name="Before you start")).to_be_visible()
    page.get_by_role("button", name="I agree, start").click()
    expect(page.get_by_role("heading", name="What do you like?")).to_be_visible()
    item_ids = page.locator("li.pick").evaluate_all("els => els.slice(0, 3).map(e => e.id)")
    for n, item_id in enumerate(item_ids, start=1):
        page.locator(f"#{item_id} button").click()
        expect(page.locator(f"#{item_id} button")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#pick-count strong")).to_have_text(str(n))  # htmx swapped the card and count
    expect(page.locator("li.pick.picked")).to_have_count(3)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="How it works")).to_be_visible()
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_label("What are you looking for?")).to_be_visible()
    return page


def participant_of(study: Study) -> Participant:
    return Participant.objects.filter(study=study).latest("number")


def make_request(page, text: str) -> Request:  # type: ignore[no-untyped-def]
    """Type a request, submit it and wait until the lists are shown."""
    expect = _expect()
    page.get_by_label("What are you looking for?").fill(text)
    page.get_by_role("button", name="Show recommendations").click()
    expect(page.locator("li.slot").first).to_be_visible()
    expect(page.locator(".preparing")).to_have_count(0)
    token = page.url.rstrip("/").split("/p/")[1].split("/")[0]
    return Request.objects.filter(participant__token=token).latest("number")


def rate(page, slot_pk: int, value: str) -> None:  # type: ignore[no-untyped-def]
    """Click a rating button and wait until the server has stored it (the item stops being busy)."""
    expect = _expect()
    page.locator(f"#rating-{slot_pk} button[value='{value}']").click()
    expect(page.locator(f"#rating-{slot_pk} button[value='{value}']")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator(f"#slot-{slot_pk}[aria-busy='true']")).to_have_count(0)


def shown_slot_pks(page) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(pk) for pk in page.locator("li.slot").evaluate_all("els => els.map(e => e.dataset.slot)")]


def wait_for_db(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the database never reached the expected state")
        time.sleep(0.05)


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """Let the page finish handling the last input: a shortcut sends its rating synchronously
    (study.js clicks the button, htmx issues the request in that click), so after one more
    task any request it was going to send has been sent."""
    page.evaluate("() => new Promise(resolve => setTimeout(resolve, 0))")


def label_of(slot_pk: int) -> int | None | str:
    judgement = Judgement.objects.filter(slot_id=slot_pk).first()
    return "missing" if judgement is None else judgement.label


# --- Tests -------------------------------------------------------------------------------


def test_full_flow_from_consent_to_completion_code_and_csv_row(open_page, study: Study) -> None:
    expect = _expect()
    page = start_study(open_page, study)
    texts = ["a light linen shirt for a beach wedding", "warm winter boots for hiking"]
    rated: dict[int, tuple[str, str]] = {}  # slot pk -> (request text, label)
    for n, text in enumerate(texts, start=1):
        expect(page.get_by_role("heading", name=f"Request {n} of 2")).to_be_visible()
        request = make_request(page, text)
        expect(page.get_by_role("heading", name="List A")).to_be_visible()
        expect(page.get_by_role("heading", name="List B")).to_be_visible()
        expect(page.locator(".request-text q")).to_have_text(text)
        slots = shown_slot_pks(page)
        assert sorted(slots) == sorted(request.slots.values_list("pk", flat=True))
        assert len(slots) == 2 * study.k
        assert page.locator("li.slot img").evaluate_all(
            "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)"
        )
        for i, slot_pk in enumerate(slots):
            label = str(i % 4)
            rate(page, slot_pk, label)
            rated[slot_pk] = (text, label)
        expect(page.locator("#unjudged")).to_have_text("All items rated.")
        page.get_by_role("button", name="Finish" if n == len(texts) else "Next request").click()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    expect(page.locator("#completion-code")).to_have_text(study.completion_code)
    assert participant_of(study).phase == Participant.Phase.DONE

    staff = get_user_model().objects.create_user("researcher", password="x", is_staff=True)
    client = Client()
    client.force_login(staff)
    response = client.get(f"/researcher/studies/{study.pk}/export/judgements.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == len(rated) == 2 * 2 * study.k
    titles = dict(Slot.objects.filter(pk__in=rated).values_list("pk", "item__title"))
    by_judgement = {int(r["judgement_id"]): r for r in rows}
    for slot_pk, (text, label) in rated.items():
        row = by_judgement[Judgement.objects.get(slot_id=slot_pk).pk]
        assert (row["request_text"], row["item_title"], row["label"]) == (text, titles[slot_pk], label)


def test_ratings_survive_reload_and_personal_link_resumes_on_another_device(open_page, study: Study) -> None:
    expect = _expect()
    page = start_study(open_page, study)
    request = make_request(page, "a red summer dress")
    first, second = shown_slot_pks(page)[:2]
    rate(page, first, "3")
    rate(page, second, "na")
    rate(page, second, "1")  # changing a rating replaces it
    page.reload()
    expect(page.locator(f"#rating-{first} button[value='3']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#rating-{second} button[value='1']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#rating-{second} button[value='na']")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#unjudged")).to_have_text(f"{2 * study.k - 2} items left to rate.")

    link = page.get_by_role("link", name="your personal link").get_attribute("href")
    assert link == f"/p/{participant_of(study).token}/"
    other = open_page(link, viewport={"width": 390, "height": 844})  # another device: no cookies shared
    expect(other.get_by_role("heading", name="Request 1 of 2")).to_be_visible()
    expect(other.locator(".request-text q")).to_have_text("a red summer dress")
    assert shown_slot_pks(other) == shown_slot_pks(page)
    expect(other.locator(f"#rating-{first} button[value='3']")).to_have_attribute("aria-pressed", "true")
    rate(other, shown_slot_pks(other)[2], "2")  # and the participant can carry on there
    assert Judgement.objects.filter(slot__request=request).count() == 3
    assert Participant.objects.filter(study=study).count() == 1


def test_keyboard_digit_rates_focused_item_but_typing_in_textarea_does_not(open_page, study: Study) -> None:
    expect = _expect()
    page = start_study(open_page, study)
    # Typing a request with digits and shortcut letters types them; nothing is rated or moved.
    textarea = page.get_by_label("What are you looking for?")
    textarea.click()
    textarea.press_sequentially("size 42 jkn 0123 boots")
    expect(textarea).to_have_value("size 42 jkn 0123 boots")
    expect(textarea).to_be_focused()
    request = make_request(page, "size 42 black leather boots 2")
    slots = shown_slot_pks(page)
    judge_posts: list[str] = []  # every rating the page sends, to show that a key sent none
    page.on("request", lambda r: judge_posts.append(r.url) if r.url.endswith("/judge/") else None)

    page.locator(f"#slot-{slots[0]}").focus()
    page.keyboard.press("2")
    expect(page.locator(f"#rating-{slots[0]} button[value='2']")).to_have_attribute("aria-pressed", "true")
    wait_for_db(lambda: label_of(slots[0]) == 2)
    expect(page.locator(f"#slot-{slots[1]}")).to_be_focused()  # moved on to the next item
    page.keyboard.press("n")
    wait_for_db(lambda: label_of(slots[1]) is None)
    expect(page.locator(f"#slot-{slots[2]}")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(page.locator(f"#slot-{slots[1]}")).to_be_focused()
    sent = len(judge_posts)
    page.keyboard.press("7")  # not on the scale: ignored
    settle(page)
    assert len(judge_posts) == sent and label_of(slots[1]) is None

    # A text field inside a focused item (the same situation as the request textarea) swallows shortcuts.
    page.evaluate(
        "pk => { const t = document.createElement('textarea'); t.id = 'note';"
        " document.querySelector('#slot-' + pk + ' .body').appendChild(t); }",
        slots[3],
    )
    page.locator("#note").click()
    page.keyboard.type("3 1 0 n j")
    expect(page.locator("#note")).to_have_value("3 1 0 n j")
    settle(page)
    assert len(judge_posts) == sent  # no rating was sent while typing
    assert label_of(slots[3]) == "missing"
    assert Judgement.objects.filter(slot__request=request).count() == 2


def test_fast_keyboard_ratings_land_on_the_item_focused_at_each_key_whatever_the_latency(
    open_page, study: Study
) -> None:
    expect = _expect()
    page = start_study(open_page, study)
    request = make_request(page, "black leather boots")
    slots = shown_slot_pks(page)  # List A then List B: 2 x k = 8 items
    typed = {}
    # Local speed: focus item 1 and type 3210 with 30 ms between keys.
    page.locator(f"#slot-{slots[0]}").focus()
    for slot_pk, key in zip(slots[:4], "3210", strict=True):
        page.keyboard.press(key)
        typed[slot_pk] = int(key)
        page.wait_for_timeout(30)
    # 250 ms of network latency on every request, 200 ms between keys: each key still rates the
    # item focused when it was pressed, and focus never jumps back to an item already rated.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 250, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    round_trip_ms = page.evaluate(
        "async () => { const t = performance.now(); await fetch(location.href); return performance.now() - t; }"
    )
    assert round_trip_ms >= 250  # the throttling is in effect
    expect(page.locator(f"#slot-{slots[4]}")).to_be_focused()
    for slot_pk, key in zip(slots[4:], "1230", strict=True):
        page.keyboard.press(key)
        typed[slot_pk] = int(key)
        page.wait_for_timeout(200)
    expect(page.locator(f"#slot-{slots[7]}")).to_be_focused()
    expect(page.locator("#unjudged")).to_have_text("All items rated.")
    wait_for_db(lambda: {pk: label_of(pk) for pk in slots} == typed)
    assert list(Judgement.objects.filter(slot__request=request).values_list("changes", flat=True)) == [0] * 8
    for slot_pk, value in typed.items():
        expect(page.locator(f"#rating-{slot_pk} button[value='{value}']")).to_have_attribute(
            "aria-pressed", "true"
        )

    # A save that fails is visible: the item is marked, the reason announced, the stored rating shown.
    page.route("**/judge/", lambda route: route.abort())
    page.locator(f"#slot-{slots[0]}").focus()
    page.keyboard.press("1")
    expect(page.locator("#flash")).to_contain_text("was not saved")
    expect(page.locator(f"#slot-{slots[0]}.save-failed")).to_have_count(1)
    expect(page.locator(f"#rating-{slots[0]} button[value='3']")).to_have_attribute("aria-pressed", "true")
    assert label_of(slots[0]) == 3
    page.unroute("**/judge/")
    rate(page, slots[0], "2")  # rating it again (still at 250 ms latency) stores it and clears the warning
    expect(page.locator("#flash")).to_have_text("")
    expect(page.locator(f"#slot-{slots[0]}.save-failed")).to_have_count(0)
    assert label_of(slots[0]) == 2

    # "Next" pressed while a rating is still on its way waits for it instead of being refused.
    page.locator(f"#slot-{slots[1]}").focus()
    page.keyboard.press("3")
    page.locator("#next").click()
    expect(page.get_by_role("heading", name="Request 2 of 2")).to_be_visible()
    assert label_of(slots[1]) == 3
    assert Request.objects.get(pk=request.pk).completed_at is not None


def test_interleaved_mode_shows_one_list_of_k_items_each_credited_to_a_team(open_page, study: Study) -> None:
    expect = _expect()
    study.presentation_mode = Study.Mode.INTERLEAVED
    study.save()
    page = start_study(open_page, study)
    request = make_request(page, "a navy blazer for the office")
    expect(page.locator("section.list")).to_have_count(1)
    expect(page.get_by_role("heading", name="List A")).to_have_count(0)
    expect(page.get_by_role("heading", name="List B")).to_have_count(0)
    assert "List A" not in page.content() and "List B" not in page.content()
    expect(page.locator("li.slot")).to_have_count(study.k)
    slots = list(request.slots.all())
    assert len(slots) == study.k
    assert all(s.list_label == "" for s in slots)
    assert all(s.team_id is not None for s in slots)
    assert {s.team_id for s in slots} <= set(study.systems.values_list("pk", flat=True))
    assert shown_slot_pks(page) == [s.pk for s in sorted(slots, key=lambda s: s.position)]
    for system in study.systems.all():
        assert system.name not in page.content()  # still blinded


def test_attention_check_rated_relevant_twice_ends_with_screenout_code(open_page, study: Study) -> None:
    expect = _expect()
    study.attention_checks = True
    study.attention_failures_allowed = 1
    study.save()
    relevant = str(study.scale.relevant_threshold)
    page = start_study(open_page, study)
    for n, text in enumerate(["a white cotton t-shirt", "running shoes for a marathon"], start=1):
        request = make_request(page, text)
        slots = list(request.slots.all())
        # The check replaces its list's last item, so both lists stay k long (no tell-tale length).
        assert len(slots) == 2 * study.k
        checks = [s for s in slots if s.is_attention_check]
        assert len(checks) == 1
        expect(page.locator("li.slot")).to_have_count(2 * study.k)
        for slot_pk in shown_slot_pks(page):
            rate(page, slot_pk, relevant if slot_pk == checks[0].pk else "0")
        page.get_by_role("button", name="Finish" if n == 2 else "Next request").click()
        if n == 1:
            expect(page.get_by_role("heading", name="Request 2 of 2")).to_be_visible()
            assert Request.objects.get(pk=request.pk).attention_check_failed is True
    expect(page.get_by_role("heading", name="Thank you for your time")).to_be_visible()
    expect(page.locator("#screenout-code")).to_have_text(study.screenout_code)
    expect(page.locator("#completion-code")).to_have_count(0)
    participant = participant_of(study)
    assert (participant.phase, participant.attention_failures) == (Participant.Phase.SCREENED_OUT, 2)


def test_lists_page_is_usable_on_a_phone_viewport(open_page, study: Study, tmp_path: Path) -> None:
    expect = _expect()
    page = start_study(
        open_page, study, viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True
    )
    make_request(page, "a waterproof jacket with a hood for cycling in the rain")
    slots = shown_slot_pks(page)
    page.locator(f"#rating-{slots[0]} button[value='2']").tap()
    expect(page.locator(f"#rating-{slots[0]} button[value='2']")).to_have_attribute("aria-pressed", "true")
    wait_for_db(lambda: label_of(slots[0]) == 2)
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, (
        f"horizontal scrolling: page is {width[0]}px wide in a {width[1]}px viewport"
    )
    heights = page.locator(".rating button").evaluate_all(
        "bs => bs.map(b => b.getBoundingClientRect().height)"
    )
    assert len(heights) == len(slots) * (len(study.scale.values) + 1)
    assert min(heights) >= 40, f"rating buttons too small to tap: {min(heights)}px"
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)  # kept in pytest's basetemp for a look
    next_button = page.locator("#next").bounding_box()
    assert (
        next_button is not None
        and next_button["height"] >= 40
        and next_button["x"] + next_button["width"] <= 376
    )


def test_html_in_a_request_is_shown_as_text(open_page, study: Study) -> None:
    expect = _expect()
    page = start_study(open_page, study)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    text = "<script>alert(1)</script><b>x</b>"
    request = make_request(page, text)
    assert request.text == text
    expect(page.locator(".request-text q")).to_have_text(text)
    expect(page.locator(".request-text b")).to_have_count(0)
    expect(page.locator(".request-text script")).to_have_count(0)
    page.reload()  # and again on a fresh render
    expect(page.locator(".request-text q")).to_have_text(text)
    assert dialogs == []


def test_lists_page_screenshot(open_page, study: Study, tmp_path: Path) -> None:
    """Desktop screenshot of the side-by-side lists with a few ratings (for the docs).

    Written to docs/screenshots/lists.png only with UPDATE_SCREENSHOTS=1, else to tmp_path.
    """
    expect = _expect()
    study.title = "WhisperLite fashion study"
    study.save()
    page = start_study(open_page, study, viewport={"width": 1280, "height": 900})
    make_request(page, "a light linen shirt for a beach wedding")
    expect(page.get_by_role("heading", name="List B")).to_be_visible()
    slots = shown_slot_pks(page)
    for slot_pk, value in zip(slots[:2] + slots[4:5], ["3", "2", "1"], strict=True):
        rate(page, slot_pk, value)
    page.evaluate("() => Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    target = (
        REPO / "docs" / "screenshots" / "lists.png"
        if os.environ.get("UPDATE_SCREENSHOTS") == "1"
        else tmp_path / "lists.png"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True, animations="disabled")
    assert target.stat().st_size > 10_000


def test_in_process_mode_shows_preparing_at_once_and_the_lists_replace_it(
    open_page, study: Study, settings, monkeypatch
) -> None:
    """The embedded default ranks after the response: "preparing" shows, then the lists by themselves.

    While it waits, htmx follows the server's adaptive schedule: each check asks with the next
    poll number (its delay, 150/250/400/700 ms, comes from the page itself).
    """
    import threading

    from studyapp import ranking_service

    expect = _expect()
    settings.WHISPERLITE_EAGER_IN_BACKGROUND = True
    release = threading.Event()
    real = ranking_service.rank_all

    def gated(*args, **kwargs):  # type: ignore[no-untyped-def]
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(ranking_service, "rank_all", gated)
    page = start_study(open_page, study)
    polls: list[str] = []
    page.on(
        "request", lambda r: polls.append(r.url.split("?poll=")[1]) if "/status/?poll=" in r.url else None
    )
    page.get_by_label("What are you looking for?").fill("a red summer dress")
    page.get_by_role("button", name="Show recommendations").click()
    expect(page.locator(".preparing")).to_be_visible()  # the page answered while ranking waits
    assert Request.objects.get(participant__study=study).status != Request.Status.DONE
    deadline = time.monotonic() + 30
    while len(polls) < 4 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    release.set()
    expect(page.locator("li.slot").first).to_be_visible()  # swapped in by the poll, no reload here
    expect(page.locator(".preparing")).to_have_count(0)
    assert polls[:4] == ["1", "2", "3", "4"], polls  # each check asks with the next number


def test_a_rating_click_during_an_outage_is_retried_once_or_shown_as_not_saved(
    chromium_browser, live_server, study: Study
) -> None:
    """A 503 (database restart) on a rating: study.js's save queue sends it once more; if that
    fails too, the page says it was not saved and the button goes back to unpressed: never
    silently lost."""
    expect = _expect()
    context = chromium_browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)

    def opener(path: str = "", **context_args):  # type: ignore[no-untyped-def]
        page = context.new_page()
        page.goto(path)
        return page

    try:
        page = start_study(opener, study)
        make_request(page, "a red summer dress")
        slots = shown_slot_pks(page)
        outage = {"answers_left": 1}

        def flaky(route) -> None:  # type: ignore[no-untyped-def]
            if outage["answers_left"] > 0:
                outage["answers_left"] -= 1
                route.fulfill(status=503, body="busy", headers={"Retry-After": "5", "HX-Reswap": "none"})
            else:
                route.continue_()

        page.route("**/judge/", flaky)
        rate(page, slots[0], "2")  # the first send got a 503; the retry landed
        wait_for_db(lambda: label_of(slots[0]) == 2)
        assert outage["answers_left"] == 0

        outage["answers_left"] = 2  # the outage outlasts the retry
        page.locator(f"#rating-{slots[1]} button[value='1']").click()
        expect(page.locator("#flash")).to_contain_text("was not saved")
        expect(page.locator(f"#slot-{slots[1]}.save-failed")).to_have_count(1)
        expect(page.locator(f"#rating-{slots[1]} button[value='1']")).to_have_attribute(
            "aria-pressed", "false"
        )
        assert outage["answers_left"] == 0  # both the click and its one retry reached the server
        assert label_of(slots[1]) == "missing"
        rate(page, slots[1], "1")  # clicking again once the server is back saves it
        wait_for_db(lambda: label_of(slots[1]) == 1)
        expect(page.locator(f"#slot-{slots[1]}.save-failed")).to_have_count(0)
    finally:
        context.close()


def test_next_after_a_failed_save_stays_on_the_page_and_a_double_next_submits_once(
    chromium_browser, live_server, study: Study
) -> None:
    """A changed rating whose save fails (503, then 503 on the retry) holds "Next": the request is
    not finished with the old rating. Once rated again, a double "Next" sends one submission."""
    expect = _expect()
    context = chromium_browser.new_context(base_url=live_server.url)  # own context: 503s expected
    context.set_default_timeout(TIMEOUT_MS)

    def opener(path: str = "", **context_args):  # type: ignore[no-untyped-def]
        page = context.new_page()
        page.goto(path)
        return page

    try:
        page = start_study(opener, study)
        request = make_request(page, "a warm winter coat")
        slots = shown_slot_pks(page)
        for slot_pk in slots:
            rate(page, slot_pk, "2")
        wait_for_db(lambda: all(label_of(pk) == 2 for pk in slots))
        nexts: list[str] = []
        page.on(
            "request",
            lambda r: nexts.append(r.url) if r.method == "POST" and r.url.endswith("/next/") else None,
        )
        outage = {"answers_left": 2}

        def flaky(route) -> None:  # type: ignore[no-untyped-def]
            if outage["answers_left"] > 0:
                outage["answers_left"] -= 1
                route.fulfill(status=503, body="busy", headers={"HX-Reswap": "none"})
            else:
                route.continue_()

        page.route("**/judge/", flaky)
        page.locator(f"#rating-{slots[0]} button[value='0']").click()
        page.locator("#next").click()  # while the save (and its retry) is still on its way
        expect(page.locator(f"#slot-{slots[0]}.save-failed")).to_have_count(1)
        expect(page.locator("#flash")).to_contain_text("was not saved")
        expect(page.locator(f"#slot-{slots[0]}")).to_be_focused()
        page.wait_for_timeout(300)
        expect(page.get_by_role("heading", name="Request 1 of 2")).to_be_visible()
        assert outage["answers_left"] == 0 and nexts == []
        assert label_of(slots[0]) == 2
        assert Request.objects.get(pk=request.pk).completed_at is None
        page.locator("#next").click()  # pressed again with nothing queued: still held
        page.wait_for_timeout(300)
        assert nexts == [] and Request.objects.get(pk=request.pk).completed_at is None

        page.unroute("**/judge/")
        # Rate again and press "Next" twice in one go, while that save is on its way.
        page.evaluate(
            """slot => {
                document.querySelector(`#rating-${slot} button[value='0']`).click();
                document.getElementById("next").click();
                document.getElementById("next").click();
            }""",
            slots[0],
        )
        expect(page.get_by_role("heading", name="Request 2 of 2")).to_be_visible()
        assert label_of(slots[0]) == 0
        assert Request.objects.get(pk=request.pk).completed_at is not None
        assert len(nexts) == 1
    finally:
        context.close()
