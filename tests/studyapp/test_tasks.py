"""The ranking task: idempotent, crash-safe, and producing each presentation mode's slots."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from studyapp.models import Participant, RankedList, Request, Slot, Study
from studyapp.tasks import rank_request
from tests.studyapp.factories import RankingSystemFactory

pytestmark = pytest.mark.django_db


def new_request(participant: Participant, text: str = "casual shoes", number: int = 1) -> Request:
    return Request.objects.create(participant=participant, number=number, text=text, seed=1234)


def test_task_stores_lists_with_versions_and_latency(participant: Participant) -> None:
    request = new_request(participant)
    assert rank_request(request.pk) == "done"
    lists = list(RankedList.objects.filter(request=request))
    assert {lst.system.kind for lst in lists} == {"zero_shot", "history_blend"}
    for lst in lists:
        assert len(lst.item_ids) == len(lst.scores) == participant.study.k
        assert lst.scores == sorted(lst.scores, reverse=True)
        assert lst.version.startswith("sentence-transformers:all-MiniLM-L6-v2")
        assert lst.latency_ms > 0


def test_running_the_task_twice_changes_nothing(participant: Participant) -> None:
    request = new_request(participant)
    rank_request(request.pk)
    before = list(Slot.objects.filter(request=request).values_list("pk", "item_id", "list_label", "position"))
    assert rank_request(request.pk) == "skipped"
    assert (
        list(Slot.objects.filter(request=request).values_list("pk", "item_id", "list_label", "position"))
        == before
    )
    assert RankedList.objects.filter(request=request).count() == 2


def test_task_for_a_deleted_request_returns_quietly(db) -> None:
    assert rank_request(987654) == "skipped"


def test_request_whose_worker_stopped_renewing_its_lease_is_reclaimed(participant: Participant) -> None:
    request = new_request(participant)
    Request.objects.filter(pk=request.pk).update(
        status=Request.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=60),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert rank_request(request.pk) == "done"


def test_request_being_ranked_by_a_live_worker_is_not_taken_over(participant: Participant) -> None:
    request = new_request(participant)
    assert Request.objects.claim(request.pk) is not None  # a live worker holds a fresh lease
    assert rank_request(request.pk) == "skipped"
    assert Request.objects.get(pk=request.pk).status == Request.Status.RUNNING


def test_study_with_one_system_fails_with_a_readable_reason(participant: Participant) -> None:
    participant.study.systems.set([RankingSystemFactory(name="Only one")])
    request = new_request(participant)
    assert rank_request(request.pk) == "failed"
    request.refresh_from_db()
    assert request.status == Request.Status.FAILED
    assert "fewer than two systems" in request.error


def test_interleaved_mode_shows_one_list_with_a_team_per_slot(participant: Participant) -> None:
    Study.objects.filter(pk=participant.study_id).update(presentation_mode=Study.Mode.INTERLEAVED)
    request = new_request(participant)
    rank_request(request.pk)
    slots = list(request.slots.all())
    assert len(slots) == participant.study.k
    assert {s.list_label for s in slots} == {""}
    assert all(s.team_id is not None for s in slots)
    assert len({s.item_id for s in slots}) == len(slots)


def test_pooled_mode_shows_each_item_once_and_credits_every_system(participant: Participant) -> None:
    Study.objects.filter(pk=participant.study_id).update(presentation_mode=Study.Mode.POOLED)
    request = new_request(participant)
    rank_request(request.pk)
    lists = {str(lst.system_id): lst.item_ids for lst in request.ranked_lists.all()}
    union = {i for ids in lists.values() for i in ids}
    slots = list(request.slots.select_related("item"))
    assert sorted(s.item.external_id for s in slots) == sorted(union)
    for slot in slots:
        expected = {sid for sid, ids in lists.items() if slot.item.external_id in ids}
        assert set(slot.system_ranks) == expected


def test_attention_check_item_is_injected_and_recorded(participant: Participant) -> None:
    Study.objects.filter(pk=participant.study_id).update(attention_checks=True)
    request = new_request(participant, "black formal leather shoes")
    rank_request(request.pk)
    checks = list(request.slots.filter(is_attention_check=True).select_related("item"))
    assert len(checks) == 1
    assert checks[0].team_id is None and checks[0].system_ranks == {}
    shown = {i for lst in request.ranked_lists.all() for i in lst.item_ids}
    assert checks[0].item.external_id not in shown


def test_practice_requests_get_no_attention_check(participant: Participant) -> None:
    Study.objects.filter(pk=participant.study_id).update(attention_checks=True)
    request = Request.objects.create(
        participant=participant, number=0, is_practice=True, text="a bag", seed=5
    )
    rank_request(request.pk)
    assert not request.slots.filter(is_attention_check=True).exists()


def test_blinding_is_reproducible_from_the_stored_seed(participant: Participant) -> None:
    from studyapp import display, ranking_service

    request = new_request(participant)
    rank_request(request.pk)
    systems = list(participant.study.systems.order_by("pk"))
    history = list(participant.picks.values_list("item__external_id", flat=True))
    rankings = ranking_service.rank_all(
        systems, participant.study.catalog, request.text, history, participant.study.k
    )
    replanned = display.plan_slots(request, rankings, None)
    stored = [
        (s.list_label, s.position, s.item.external_id, str(s.team_id))
        for s in request.slots.select_related("item")
    ]
    assert sorted(stored) == sorted((s.list_label, s.position, s.item_id, s.team) for s in replanned)


def test_sweeper_resends_a_request_whose_message_was_lost(
    participant: Participant, settings, django_capture_on_commit_callbacks
) -> None:
    from studyapp import sweeper

    request = new_request(participant)
    old = timezone.now() - timedelta(seconds=settings.WHISPERLITE_RESEND_SECONDS + 5)
    Request.objects.filter(pk=request.pk).update(enqueued_at=old)
    assert sweeper.sweep_once() == 1
    request.refresh_from_db()
    assert request.status == Request.Status.DONE
    assert sweeper.sweep_once() == 0  # nothing is due any more


def test_sweeper_leaves_a_freshly_sent_request_and_a_live_claim_alone(participant: Participant) -> None:
    from studyapp import sweeper

    fresh = new_request(participant)
    Request.objects.filter(pk=fresh.pk).update(enqueued_at=timezone.now())
    held = new_request(participant, number=2)
    Request.objects.claim(held.pk)
    Request.objects.filter(pk=held.pk).update(enqueued_at=timezone.now() - timedelta(hours=1))
    assert sweeper.sweep_once() == 0
    assert Request.objects.get(pk=fresh.pk).status == Request.Status.PENDING


def test_sweeper_resends_a_request_whose_lease_ran_out(participant: Participant, settings) -> None:
    from studyapp import sweeper

    request = new_request(participant)
    Request.objects.claim(request.pk, claimant="dead-worker-task")
    Request.objects.filter(pk=request.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        enqueued_at=timezone.now() - timedelta(seconds=settings.WHISPERLITE_RESEND_SECONDS + 1),
    )
    assert sweeper.sweep_once() == 1
    request.refresh_from_db()
    assert (request.status, request.attempts) == (Request.Status.DONE, 2)


def test_polling_never_resends_work(participant: Participant, client, settings) -> None:
    request = new_request(participant)
    old = timezone.now() - timedelta(seconds=settings.WHISPERLITE_RESEND_SECONDS + 5)
    Request.objects.filter(pk=request.pk).update(enqueued_at=old)
    response = client.get(f"/p/{participant.token}/requests/1/status/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"Preparing" in response.content
    request.refresh_from_db()
    assert (request.status, request.enqueued_at) == (Request.Status.PENDING, old)


def test_a_transient_database_error_gives_the_claim_back_and_retries(
    participant: Participant, monkeypatch
) -> None:
    from django.db import OperationalError

    from studyapp import ranking_service

    request = new_request(participant)
    real = ranking_service.rank_all
    calls = []

    def blink(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(ranking_service, "rank_all", blink)
    result = rank_request.apply(args=[request.pk])  # eager: the retry runs at once
    request.refresh_from_db()
    assert len(calls) == 2
    assert (request.status, request.attempts, request.error) == (Request.Status.DONE, 2, "")
    assert result.state == "SUCCESS"


def test_a_retried_task_takes_back_its_own_claim_but_no_other_task_can(participant: Participant) -> None:
    request = new_request(participant)
    first = Request.objects.claim(request.pk, claimant="task-1")
    assert first is not None
    assert Request.objects.claim(request.pk, claimant="task-2") is None
    again = Request.objects.claim(request.pk, claimant="task-1")
    assert again is not None and again.started_at > first.started_at
    assert not Request.objects.renew(first)  # the old claim is void
    assert Request.objects.renew(again)


def test_a_late_failure_cannot_undo_a_finished_request(participant: Participant, settings) -> None:
    request = new_request(participant)
    claim = Request.objects.claim(request.pk)
    # Meanwhile (stale reclaim) another worker finished it, and the participant started rating.
    Request.objects.filter(pk=request.pk).update(status=Request.Status.PENDING)
    assert rank_request(request.pk) == "done"
    slot = request.slots.first()
    from studyapp.services import do_record_judgement

    do_record_judgement(participant, slot.pk, "2")
    assert not Request.objects.fail(claim, "SoftTimeLimitExceeded")  # the first worker gives up late
    request.refresh_from_db()
    assert request.status == Request.Status.DONE and request.error == ""
    assert slot.judgement.label == 2


def test_reranking_never_deletes_a_participants_judgements(participant: Participant, settings) -> None:
    from studyapp.services import do_record_judgement

    request = new_request(participant)
    rank_request(request.pk)
    slots = list(request.slots.values_list("pk", flat=True))
    do_record_judgement(participant, slots[0], "3")
    lapsed = timezone.now() - timedelta(seconds=1)
    Request.objects.filter(pk=request.pk).update(status=Request.Status.RUNNING, lease_expires_at=lapsed)
    assert rank_request(request.pk) == "skipped"
    request.refresh_from_db()
    assert request.status == Request.Status.DONE
    assert list(request.slots.values_list("pk", flat=True)) == slots
    assert request.slots.get(pk=slots[0]).judgement.label == 3


def test_a_request_whose_workers_keep_dying_is_failed_after_the_attempt_cap(participant: Participant) -> None:
    from studyapp.models.lifecycle import MAX_ATTEMPTS

    request = new_request(participant)
    Request.objects.filter(pk=request.pk).update(attempts=MAX_ATTEMPTS)
    assert rank_request(request.pk) == "failed"
    request.refresh_from_db()
    assert request.status == Request.Status.FAILED and "gave up" in request.error


@pytest.mark.django_db(transaction=True)  # the renewing thread has its own connection
def test_a_lease_is_renewed_while_the_task_runs(participant: Participant, settings, monkeypatch) -> None:
    """A ranking slower than the lease keeps its claim: the beat renews it (here every 1 s)."""
    import time

    from studyapp import ranking_service

    settings.WHISPERLITE_CLAIM_LEASE_SECONDS = 3
    request = new_request(participant)
    real = ranking_service.rank_all
    seen = {}

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(3.5)  # longer than the lease
        seen["lease"] = Request.objects.get(pk=request.pk).lease_expires_at
        seen["now"] = timezone.now()
        return real(*args, **kwargs)

    monkeypatch.setattr(ranking_service, "rank_all", slow)
    assert rank_request(request.pk) == "done"
    assert seen["lease"] > seen["now"]  # still held after longer than one lease


def test_side_by_side_lists_stay_equally_long_with_an_attention_check(participant: Participant) -> None:
    Study.objects.filter(pk=participant.study_id).update(attention_checks=True)
    request = new_request(participant, "black formal leather shoes")
    rank_request(request.pk)
    lengths = [request.slots.filter(list_label=label).count() for label in ("A", "B")]
    assert lengths == [participant.study.k, participant.study.k]
    assert request.slots.filter(is_attention_check=True).count() == 1


def test_a_new_catalog_version_drops_the_old_rankers(participant: Participant) -> None:
    from studyapp import ranking_service

    catalog = participant.study.catalog
    system = participant.study.systems.first()
    ranking_service.get_ranker(system, catalog)
    assert ranking_service._rankers
    catalog.items.first().delete()
    catalog.version = ranking_service.catalog_fingerprint_of(catalog)
    ranking_service.get_index(catalog)
    assert ranking_service._rankers == {}  # nothing keeps the old version's index alive


def test_ranking_task_stays_within_its_query_budget(
    participant: Participant, django_assert_max_num_queries
) -> None:
    """The ORM path's budget (SQLite; PostgreSQL's two statements are pinned in
    test_ranking_store.py): claim, read request/systems/history, one conditional UPDATE, one bulk
    insert each for lists and slots, plus this test's savepoint pair. A lookup creeping back into
    the task fails here."""
    Study.objects.filter(pk=participant.study_id).update(attention_checks=True)
    rank_request(new_request(participant, "warm up", number=1).pk)  # per-process caches filled
    request = new_request(participant, "black formal leather shoes", number=2)
    with django_assert_max_num_queries(9):
        assert rank_request(request.pk) == "done"
    assert request.slots.filter(is_attention_check=True).count() == 1


def test_request_is_encoded_once_for_every_system_and_the_attention_check(
    participant: Participant, monkeypatch
) -> None:
    from studyapp import ranking_service

    Study.objects.filter(pk=participant.study_id).update(attention_checks=True)
    encoder = ranking_service.get_encoder()
    real = encoder.encode_text
    texts: list[list[str]] = []

    def counting(batch, *args, **kwargs):  # type: ignore[no-untyped-def]
        texts.append(list(batch))
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(encoder, "encode_text", counting)
    request = new_request(participant, "black formal leather shoes")
    assert rank_request(request.pk) == "done"
    assert texts == [["black formal leather shoes"]]


def test_lists_store_the_shared_encode_time_apart_from_each_systems_scoring(participant: Participant) -> None:
    request = new_request(participant)
    rank_request(request.pk)
    lists = list(RankedList.objects.filter(request=request))
    assert len({lst.encode_ms for lst in lists}) == 1  # one encode, shared
    assert lists[0].encode_ms > 0
    assert all(0 < lst.latency_ms for lst in lists)


def test_slots_left_by_a_lapsed_claim_without_judgements_are_replaced(participant: Participant) -> None:
    request = new_request(participant)
    rank_request(request.pk)
    old = set(request.slots.values_list("pk", flat=True))
    lapsed = timezone.now() - timedelta(seconds=1)
    Request.objects.filter(pk=request.pk).update(status=Request.Status.RUNNING, lease_expires_at=lapsed)
    assert rank_request(request.pk) == "done"
    new = set(request.slots.values_list("pk", flat=True))
    assert new and not new & old
    assert RankedList.objects.filter(request=request).count() == 2


def test_request_item_similarity_is_computed_once_per_task(participant: Participant, monkeypatch) -> None:
    """Zero-shot, the history blend's text part and the attention check share one q.I mat-vec;
    the blend's history part (c.I) was kept from the participant's first request."""
    from recommender.scoring import EmbeddingRanker

    Study.objects.filter(pk=participant.study_id).update(attention_checks=True)
    rank_request(new_request(participant, "warm up", number=1).pk)
    real = EmbeddingRanker.similarity
    calls: list[tuple[int, ...]] = []

    def counting(self, vectors):  # type: ignore[no-untyped-def]
        calls.append(tuple(vectors.shape))
        return real(self, vectors)

    monkeypatch.setattr(EmbeddingRanker, "similarity", counting)
    assert rank_request(new_request(participant, "black formal leather shoes", number=2).pk) == "done"
    assert len(calls) == 1 and calls[0][0] == 1  # q.I once; the same picks' c.I is not computed again


def test_attention_check_of_a_large_catalog_scores_a_seeded_sample_not_the_whole_catalog(
    participant: Participant, settings, monkeypatch
) -> None:
    from recommender.scoring import EmbeddingRanker
    from studyapp import ranking_service

    catalog = participant.study.catalog
    vector = ranking_service.encode_request("black formal leather shoes").vector
    exact = ranking_service.attention_check_item(catalog, vector, set(), seed=7)
    index = ranking_service.get_index(catalog)
    full = dict(zip(index.item_ids, ranking_service.content_ranker(catalog).similarity(vector), strict=True))
    n_items = len(index.item_ids)
    settings.WHISPERLITE_ANN_MIN_ITEMS = 2  # this small catalog now counts as large

    def no_full_scan(self, vectors):  # type: ignore[no-untyped-def]
        raise AssertionError("the attention check scanned the whole catalog")

    monkeypatch.setattr(EmbeddingRanker, "similarity", no_full_scan)
    # A sample as large as the catalog holds every row: the pick is the exact path's.
    assert ranking_service.attention_check_item(catalog, vector, set(), seed=7) == exact
    scored: list[int] = []
    real_rows = EmbeddingRanker.rows_similarity

    def recording(self, v, rows):  # type: ignore[no-untyped-def]
        scored.append(len(rows))
        return real_rows(self, v, rows)

    monkeypatch.setattr(EmbeddingRanker, "rows_similarity", recording)
    monkeypatch.setattr(ranking_service, "ATTENTION_SAMPLE_ROWS", n_items // 3)
    picks = [ranking_service.attention_check_item(catalog, vector, set(), seed=s) for s in (1, 1, 2, 3)]
    assert scored == [n_items // 3] * 4  # a sample per request, never the whole catalog
    assert picks[0] == picks[1]  # same request seed, same sample, same item
    median = float(np.median(list(full.values())))
    assert all(full[item] < median for item in picks)  # still plainly off the request
