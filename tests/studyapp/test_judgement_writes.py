"""The rating write (``POST /p/<token>/judge/``): what it stores, what it refuses, and its queries.

The query budget is pinned because the write is the study's hottest request: every extra
round trip costs CPU on a 2-core server at 50 participants rating at once (issue 10,
``scripts/bench_writes.py``). The last test runs that benchmark in small against gunicorn.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import timezone

from studyapp.design import SCALES
from studyapp.models import Catalog, Judgement, Participant, Request, Slot
from studyapp.rating_write import SavedRating, render_fragment
from tests.studyapp.factories import ParticipantFactory

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


# PostgreSQL (studyapp.rating_write): BEGIN, the participant + slot with its request locked,
# the INSERT ... ON CONFLICT with its reads, COMMIT (inside the test's transaction BEGIN/COMMIT
# appear as SAVEPOINT/RELEASE, so four statements either way). SQLite takes the general path:
# participant lookup, BEGIN, slot + request, the request's slots and judgements, then the INSERT
# inside a savepoint (no row locks: a double click's other submit may win it), COMMIT.
def max_queries() -> int:
    return 4 if connection.vendor == "postgresql" else 8


def ready_request(participant: Participant, catalog: Catalog, k: int = 3) -> Request:
    """A request as the ranking task leaves it: ready, two lists of k slots."""
    request = Request.objects.create(
        participant=participant,
        number=1,
        text="a linen shirt",
        status="done",
        seed=1,
        ready_at=timezone.now(),
    )
    items = list(catalog.items.all()[: 2 * k])
    Slot.objects.bulk_create(
        Slot(request=request, list_label=label, position=pos, item=items[i * k + pos - 1])
        for i, label in enumerate("AB")
        for pos in range(1, k + 1)
    )
    return request


def rate(client: Client, participant: Participant, slot: Slot, label: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": label}, HTTP_HX_REQUEST="true"
    )


@pytest.fixture
def tasks_participant(study) -> Participant:  # type: ignore[no-untyped-def]
    return ParticipantFactory(study=study, phase=Participant.Phase.TASKS, condition=1)


def test_first_rating_and_re_rating_each_take_at_most_four_queries_on_postgresql(
    tasks_participant: Participant, catalog: Catalog, client: Client, django_assert_max_num_queries
) -> None:
    slot = ready_request(tasks_participant, catalog).slots.first()
    with django_assert_max_num_queries(max_queries()):
        assert rate(client, tasks_participant, slot, "2").status_code == 200
    with django_assert_max_num_queries(max_queries()):
        assert rate(client, tasks_participant, slot, "3").status_code == 200


def test_rating_is_stored_and_the_fragment_shows_it_with_the_items_left(
    tasks_participant: Participant, catalog: Catalog, client: Client
) -> None:
    request = ready_request(tasks_participant, catalog)
    first, second = request.slots.all()[:2]
    rate(client, tasks_participant, first, "2")
    html = rate(client, tasks_participant, second, "na").content.decode()
    assert f'id="rating-{second.pk}"' in html
    assert 'value="na" data-key="n" aria-pressed="true"' in html
    assert "4 items left to rate." in html  # 6 slots, 2 rated
    stored = dict(Judgement.objects.values_list("slot_id", "label"))
    assert stored == {first.pk: 2, second.pk: None}
    assert Judgement.objects.get(slot=first).response_ms is not None


def test_re_rating_updates_the_one_row_and_counts_the_change(
    tasks_participant: Participant, catalog: Catalog, client: Client
) -> None:
    slot = ready_request(tasks_participant, catalog).slots.first()
    rate(client, tasks_participant, slot, "1")
    first = Judgement.objects.get(slot=slot)
    rate(client, tasks_participant, slot, "1")  # the same label again: no change
    response = rate(client, tasks_participant, slot, "3")
    assert response.status_code == 200 and "5 items left to rate." in response.content.decode()
    judgement = Judgement.objects.get(slot=slot)
    assert (judgement.pk, judgement.label, judgement.changes) == (first.pk, 3, 1)
    assert judgement.response_ms == first.response_ms  # the time to the first answer is kept


def test_another_participants_slot_is_404_and_stores_nothing(
    tasks_participant: Participant, catalog: Catalog, client: Client
) -> None:
    slot = ready_request(tasks_participant, catalog).slots.first()
    intruder = ParticipantFactory(study=tasks_participant.study, phase=Participant.Phase.TASKS, condition=2)
    response = rate(client, intruder, slot, "3")
    assert response.status_code == 404
    assert response["HX-Retarget"] == "#flash"
    assert not Judgement.objects.exists()


@pytest.mark.parametrize("label", ["9", "x", ""])
def test_label_off_the_scale_is_400_and_stores_nothing(
    tasks_participant: Participant, catalog: Catalog, client: Client, label: str
) -> None:
    slot = ready_request(tasks_participant, catalog).slots.first()
    assert rate(client, tasks_participant, slot, label).status_code == 400
    assert not Judgement.objects.exists()


def test_rating_without_the_csrf_token_is_refused(tasks_participant: Participant, catalog: Catalog) -> None:
    slot = ready_request(tasks_participant, catalog).slots.first()
    assert rate(Client(enforce_csrf_checks=True), tasks_participant, slot, "2").status_code == 403
    assert not Judgement.objects.exists()


def test_rating_a_finished_request_is_409(
    tasks_participant: Participant, catalog: Catalog, client: Client
) -> None:
    request = ready_request(tasks_participant, catalog)
    Request.objects.filter(pk=request.pk).update(completed_at=timezone.now())
    assert rate(client, tasks_participant, request.slots.first(), "2").status_code == 409
    assert not Judgement.objects.exists()


def test_bench_writes_in_small_prints_its_figures_and_loses_nothing(
    django_db_setup: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three clients for two seconds against gunicorn on the test database: every figure has a
    value, no error, and the database holds exactly what the clients were told was saved.

    No ``db`` fixture: gunicorn must see committed rows, and the benchmark deletes its own.
    """
    if connection.vendor != "postgresql":
        pytest.skip("the benchmark runs on PostgreSQL (DATABASE_URL)")
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_writes
    from bench_report import print_figures

    url = urlsplit(os.environ["DATABASE_URL"])
    test_db = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    var_dir = Path(os.environ.get("WHISPERLITE_VAR_DIR", "/tmp")) / "test_bench_writes"
    args = bench_writes.parse_args(
        ["--clients", "3", "--seconds", "2", "--warmup", "0.5", "--runs", "1", "--k", "3",
         "--workers", "1", "--threads", "4", "--paced-rate", "60", "--database-url", test_db, "--existing-database",
         "--var-dir", str(var_dir)]
    )  # fmt: skip
    figures = {f.name: f for f in bench_writes.collect(args)}
    print_figures(list(figures.values()))
    assert "writes/s (1 s windows)" in capsys.readouterr().out
    assert figures["writes/s (1 s windows)"].value > 0
    saturated, paced = (
        figures["write latency, no pause (saturated) p99"],
        figures["paced at 60/s: write latency p99"],
    )
    assert saturated.n and saturated.value > 0 and saturated.limit is None
    assert paced.n and paced.value > 0 and paced.limit == 100.0  # the limit applies to the paced run
    assert figures["paced at 60/s: writes/s achieved"].n
    assert figures["clients out of slots before the end (rate too low)"].value == 0
    for name in ("errors (non-200 or wrong fragment)", "acknowledged ratings missing in the database",
                 "slots whose stored label/changes differ", "judgements nobody acknowledged"):  # fmt: skip
        assert figures[name].value == 0, name


@pytest.mark.parametrize("scale", sorted(SCALES))
@pytest.mark.parametrize("allow_cant_judge", [True, False])
def test_the_fast_fragment_is_byte_for_byte_the_rating_template(scale: str, allow_cant_judge: bool) -> None:
    """rating_write writes study/_rating.html out by hand for speed; the page includes the
    template, so the two must not drift apart (every label, "can't judge", 0/1/n items left)."""
    request = RequestFactory().post("/")
    get_token(request)
    labels: list[int | None] = [*SCALES[scale].values, *([None] if allow_cant_judge else [])]
    for label in labels:
        for left in (0, 1, 7):
            saved = SavedRating(42, "Tom & Jerry's <linen> shirt", label, left, scale, allow_cant_judge)
            expected = render_to_string("study/_rating.html", saved.fragment_context("tok"), request=request)
            csrf = expected.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
            assert render_fragment(saved, "/p/tok/judge/", csrf) == expected, (label, left)
