"""Study validity (issue 11): every answer exported and analysed, no cue in the design.

List preferences reach the CSV, the API, the admin and the report; the attention check lands
on every position equally often; counterbalancing conditions go to those who start the tasks;
a crowd id that declined cannot start again.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from scipy import stats

from recommender.ranking import RankedList
from studyapp import display, presentation
from studyapp.analysis.preference import preference_summary
from studyapp.analysis.records import PreferenceRecord
from studyapp.analysis.report import report_to_text
from studyapp.display import _swap_in_check
from studyapp.exports import PREFERENCE_COLUMNS
from studyapp.models import ListPreference, Participant, Request, Study
from studyapp.reporting import build_study_report, report_dict
from studyapp.tasks import rank_request
from tests.studyapp.conftest import advance_to_tasks
from tests.studyapp.test_participant_flow import judge_all, make_request

pytestmark = pytest.mark.django_db


def read_csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


# --- 1. "Which list is better?" -----------------------------------------------------------


@pytest.fixture
def preferred_b(participant: Participant, client: Client, django_capture_on_commit_callbacks) -> Request:
    """A finished side-by-side request whose participant chose List B."""
    Study.objects.filter(pk=participant.study_id).update(ask_list_preference=True)
    request = make_request(client, participant, django_capture_on_commit_callbacks, "navy formal shirt")
    judge_all(client, participant, request)
    assert client.post(f"/p/{participant.token}/requests/1/preference/", {"list": "B"}).status_code == 302
    assert client.post(f"/p/{participant.token}/requests/1/next/").status_code == 302
    return request


def _system_behind(request: Request, label: str) -> str:
    return request.slots.filter(list_label=label).select_related("team").first().team.name


def test_preference_export_has_one_row_per_request_with_the_chosen_system_unblinded(
    preferred_b: Request, admin_client: Client
) -> None:
    study_id = preferred_b.participant.study_id
    rows = read_csv(admin_client.get(f"/researcher/studies/{study_id}/export/preferences.csv"))
    assert len(rows) == 1 and list(rows[0]) == PREFERENCE_COLUMNS
    (row,) = rows
    chosen, other = _system_behind(preferred_b, "B"), _system_behind(preferred_b, "A")
    assert (row["request_id"], row["list_label"], row["system"], row["no_difference"]) == (
        str(preferred_b.pk), "B", chosen, "0",
    )  # fmt: skip
    assert (
        row["participant_id"] == str(preferred_b.participant_id)
        and row["request_text"] == "navy formal shirt"
    )
    assert row["lists_shown"] == f"A={other}; B={chosen}"
    assert row["updated_at"].startswith(str(ListPreference.objects.get().updated_at.date()))
    # The same rows through the API and the admin action.
    assert read_csv(admin_client.get(f"/api/studies/{study_id}/export/?kind=preferences")) == rows
    response = admin_client.post(
        "/admin/studyapp/study/", {"action": "export_preferences", "_selected_action": [study_id]}
    )
    assert read_csv(response) == rows
    page = admin_client.get(f"/researcher/studies/{study_id}/").content.decode()
    assert f"/researcher/studies/{study_id}/export/preferences.csv" in page


def test_list_preferences_are_shown_read_only_in_the_admin(
    preferred_b: Request, admin_client: Client
) -> None:
    listing = admin_client.get("/admin/studyapp/listpreference/")
    assert listing.status_code == 200
    assert _system_behind(preferred_b, "B") in listing.content.decode()
    pref = ListPreference.objects.get()
    assert admin_client.get("/admin/studyapp/listpreference/add/").status_code == 403
    admin_client.post(f"/admin/studyapp/listpreference/{pref.pk}/change/", {"list_label": "A"})
    pref.refresh_from_db()
    assert pref.list_label == "B"


def test_report_analyses_the_preferences(preferred_b: Request) -> None:
    report = build_study_report(preferred_b.participant.study, n_resamples=50)
    shares = {s.system: s for s in report.preferences.shares}
    chosen, other = _system_behind(preferred_b, "B"), _system_behind(preferred_b, "A")
    assert (shares[chosen].n_answers, shares[chosen].n_preferred, shares[chosen].share) == (1, 1, 1.0)
    assert (shares[other].n_preferred, shares[other].share) == (0, 0.0)
    assert "Which list is better (1 answers, 0 'no difference')" in report_to_text(
        build_study_report(preferred_b.participant.study, n_resamples=50)
    )


def test_analysis_page_shows_preference_shares_tests_and_balance(
    preferred_b: Request, admin_client: Client
) -> None:
    study_id = preferred_b.participant.study_id
    page = admin_client.get(f"/researcher/studies/{study_id}/").content.decode()
    chosen, other = _system_behind(preferred_b, "B"), _system_behind(preferred_b, "A")
    # One answer: a share of 1 and 0 with Wilson intervals, and the pair's sign test.
    assert re.search(
        rf'<th scope="row">{chosen}</th><td>1</td><td>1</td><td>1\.000 \[0\.\d+, 1\.000\]</td>', page
    )
    assert re.search(
        rf'<th scope="row">{other}</th><td>1</td><td>0</td><td>0\.000 \[0\.000, 0\.\d+\]</td>', page
    )
    assert 'id="preference-tests"' in page and "<td>1.000</td>" in page  # sign test p of 1 vs 0
    # Two systems: two Latin-square conditions; this participant started in one of them.
    balance = re.findall(r"<tr><td>(\d)</td><td>A = [^<]+</td><td>(\d+)</td>", page)
    assert sorted(balance) == [("0", "0"), ("1", "1")] or sorted(balance) == [("0", "1"), ("1", "0")]


def test_analysis_page_explains_empty_preferences_and_balance(study: Study, admin_client: Client) -> None:
    Study.objects.filter(pk=study.pk).update(ask_list_preference=True)
    page = admin_client.get(f"/researcher/studies/{study.pk}/").content.decode()
    assert "No answers to &quot;which list is better?&quot; from participants yet" in page
    assert "No participants have started the tasks yet" in page
    assert 'id="preference-shares"' not in page


def test_preference_shares_have_wilson_intervals_and_a_sign_test() -> None:
    def answer(i: int, system: str | None) -> PreferenceRecord:
        label = {"X": "A", "Y": "B", None: ""}[system]
        return PreferenceRecord(i, i, label, system, (("A", "X"), ("B", "Y")))

    answers = [answer(i, "X") for i in range(8)] + [answer(8, "Y"), answer(9, None)]
    answers.append(PreferenceRecord(10, 10, "B", "Y", (("A", "X"), ("B", "Y")), is_practice=True))
    summary = preference_summary(answers)
    assert (summary.n_answers, summary.n_no_difference) == (10, 1)
    x, y = summary.shares
    assert (x.system, x.n_answers, x.n_preferred, x.share) == ("X", 10, 8, 0.8)
    wilson = stats.binomtest(8, 10).proportion_ci(method="wilson")
    assert (x.ci_low, x.ci_high) == pytest.approx((wilson.low, wilson.high))
    assert x.ci_low == pytest.approx(0.4902, abs=1e-4) and (y.n_preferred, y.share) == (1, 0.1)
    (pair,) = summary.comparisons
    assert (pair.a_preferred, pair.b_preferred, pair.no_preference) == (8, 1, 1)
    assert pair.p_value == pytest.approx(2 * (1 + 9) / 2**9)  # exact two-sided sign test, n = 9


@pytest.mark.parametrize("mode", [Study.Mode.INTERLEAVED, Study.Mode.POOLED])
def test_one_list_study_cannot_ask_which_list_is_better(
    study: Study, admin_client: Client, mode: str
) -> None:
    study.presentation_mode, study.ask_list_preference = mode, True
    with pytest.raises(ValidationError) as refused:
        study.full_clean()
    assert "ask_list_preference" in refused.value.message_dict
    page = admin_client.get(f"/admin/studyapp/study/{study.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields}
    data.update(
        {
            "presentation_mode": mode,
            "ask_list_preference": "on",
            "systems": [s.pk for s in study.systems.all()],
        }
    )
    data.update({"questionnaire_items-TOTAL_FORMS": "0", "questionnaire_items-INITIAL_FORMS": "0"})
    response = admin_client.post(
        f"/admin/studyapp/study/{study.pk}/change/", {k: v for k, v in data.items() if v is not None}
    )
    assert response.status_code == 200  # the form again, with the message
    assert "needs side-by-side lists" in response.content.decode()
    study.refresh_from_db()
    assert (study.presentation_mode, study.ask_list_preference) == (Study.Mode.SIDE_BY_SIDE, False)


# --- 3. Attention-check position -----------------------------------------------------------


def test_side_by_side_attention_check_lands_on_each_position_equally_often() -> None:
    k, seeds = 4, 4000
    items = [presentation.Slot(f"i{n}", n, "A", "sys", {"sys": n}) for n in range(1, k + 1)]
    positions = Counter()
    for seed in range(seeds):
        shown = _swap_in_check(items, "check", seed)
        assert len(shown) == k and [s.position for s in shown] == list(range(1, k + 1))
        positions[next(s.position for s in shown if s.is_attention_check)] += 1
    observed = [positions[p] for p in range(1, k + 1)]
    # Uniform over 1..k; today's insert-then-drop put it last ~40 % of the time (p ~ 1e-200).
    assert stats.chisquare(observed).pvalue > 0.001, observed


def _plan_with_check(participant: Participant, k: int, seed: int) -> list[presentation.Slot]:
    """plan_slots for a side-by-side request with an attention check, each system giving k items."""
    participant.study.k = k
    request = Request(participant=participant, number=1, seed=seed, text="a request")
    rankings = {
        system: RankedList([f"{system.pk}-{n}" for n in range(1, k + 1)], [0.0] * k, system.kind, "v", 0.0)
        for system in participant.study.systems.order_by("pk")
    }
    return display.plan_slots(request, rankings, "check")


def test_side_by_side_with_k_1_puts_the_check_in_a_labelled_list(participant: Participant) -> None:
    lists = Counter()
    for seed in range(200):
        shown = _plan_with_check(participant, 1, seed)
        assert sorted(s.list_label for s in shown) == ["A", "B"]  # each list still shows one item
        (check,) = [s for s in shown if s.is_attention_check]
        assert (check.position, check.team, check.system_ranks) == (1, None, {})
        lists[check.list_label] += 1
    assert stats.chisquare([lists["A"], lists["B"]]).pvalue > 0.001, lists


def test_plan_slots_puts_the_check_on_each_position_of_either_list_equally_often(
    participant: Participant,
) -> None:
    k, seeds = 4, 2000
    landed = Counter()
    for seed in range(seeds):
        shown = _plan_with_check(participant, k, seed)
        by_list = Counter(s.list_label for s in shown)
        assert by_list == {"A": k, "B": k}
        (check,) = [s for s in shown if s.is_attention_check]
        landed[(check.list_label, check.position)] += 1
    observed = [landed[(label, p)] for label in "AB" for p in range(1, k + 1)]
    assert stats.chisquare(observed).pvalue > 0.001, observed


def test_one_list_modes_show_k_items_plus_the_check(participant: Participant) -> None:
    study = participant.study
    Study.objects.filter(pk=study.pk).update(attention_checks=True, presentation_mode=Study.Mode.INTERLEAVED)
    request = Request.objects.create(participant=participant, number=1, text="casual shoes", seed=99)
    assert rank_request(request.pk) == "done"
    slots = list(request.slots.all())
    assert len(slots) == study.k + 1 and sum(s.is_attention_check for s in slots) == 1
    teams = Counter(s.team_id for s in slots if not s.is_attention_check)
    assert sorted(teams.values()) == [study.k // 2, study.k // 2]  # no system loses an item to the check


# --- 4. Counterbalancing and retakes -------------------------------------------------------


def test_abandoned_consent_visits_take_no_counterbalancing_condition(study: Study) -> None:
    for _ in range(3):  # fresh browsers that open the link and leave at consent
        assert Client().get(f"/s/{study.token}/").status_code == 302
    starters = []
    for _ in range(2):
        client = Client()
        token = client.get(f"/s/{study.token}/")["Location"].rstrip("/").split("/")[-1]
        participant = Participant.objects.get(token=token)
        advance_to_tasks(client, participant)
        starters.append(participant)
    assert [p.number for p in starters] == [4, 5]
    assert [p.condition for p in starters] == [1, 2]  # conditions follow who started, not who visited
    assert list(study.participants.filter(phase="consent").values_list("condition", flat=True)) == [None] * 3
    # Consecutive conditions see the two systems in opposite orders on the same request.
    for p in starters:
        rank_request(Request.objects.create(participant=p, number=1, text="casual shoes", seed=5).pk)
    first_lists = [
        Request.objects.get(participant=p, number=1).slots.filter(list_label="A").first().team_id
        for p in starters
    ]
    assert first_lists[0] != first_lists[1]


def test_report_gives_the_achieved_balance_per_condition(study: Study) -> None:
    for _ in range(3):
        client = Client()
        token = client.get(f"/s/{study.token}/")["Location"].rstrip("/").split("/")[-1]
        advance_to_tasks(client, Participant.objects.get(token=token))
    Client().get(f"/s/{study.token}/")  # an abandoned visit: counted nowhere
    Participant.objects.filter(study=study, condition=3).update(phase=Participant.Phase.DONE)
    balance = report_dict(study)["balance"]
    assert [(b["condition"], b["n_started"], b["n_finished"]) for b in balance] == [(0, 1, 0), (1, 2, 1)]
    names = set(study.systems.values_list("name", flat=True))
    for b in balance:
        assert {part.split(" = ")[1] for part in b["first_request_order"].split(", ")} == names
    assert balance[0]["first_request_order"] != balance[1]["first_request_order"]


def test_a_crowd_id_that_declined_cannot_start_again(study: Study) -> None:
    first = Client()
    response = first.get(f"/s/{study.token}/?PROLIFIC_PID=abc&SESSION_ID=s1", HTTP_USER_AGENT="Firefox")
    first.post(response["Location"] + "consent/", {"agree": "no"})
    declined = study.participants.get()
    assert declined.phase == Participant.Phase.DECLINED and declined.condition is None
    # Only the id is kept, as the record of the refusal; nothing else from the visit.
    assert (declined.external_id, declined.external_session_id, declined.external_study_id) == ("abc", "", "")
    assert declined.user_agent == ""
    for session in ("s1", "s2"):
        again = Client().get(f"/s/{study.token}/?PROLIFIC_PID=abc&SESSION_ID={session}")
        assert again.status_code == 409 and b"declined" in again.content
    assert study.participants.count() == 1
    assert b"You did not agree" in first.get(response["Location"]).content  # the same browser sees its answer
