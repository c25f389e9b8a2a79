"""Simulated participants: bots through the real service calls and the real ranking task."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from studyapp import analysis_page, reporting, simulation
from studyapp.models import Item, Judgement, Participant, QuestionnaireItem, Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_broker_pools() -> None:
    """Fresh Celery/kombu connection pools for the eager (in-memory) broker.

    test_celery_worker.py points the shared Celery app at Redis and force-closes pools when it
    switches back; in a full run a pool closed there could be handed out again here
    ("Acquire on closed pool"). Resetting kombu's registry and the app's pools avoids that.
    """
    from kombu import pools

    from studyapp.celery import app

    pools.reset()
    app._after_fork()


# The bots wait for rankings that run on commit (eagerly, in-process), so the flow tests need
# real commits rather than a test transaction that is rolled back.
def flow(test):  # type: ignore[no-untyped-def]
    return pytest.mark.usefixtures("fresh_broker_pools")(pytest.mark.django_db(transaction=True)(test))


def item(title: str, **attributes: str) -> Item:
    return Item(title=title, attributes=attributes)


JACKET = item("Red Men Casual Jacket", baseColour="Red", gender="Men", usage="Casual", articleType="Jackets")
JEANS = item(
    "Blue Women Casual Jeans", baseColour="Blue", gender="Women", usage="Casual", articleType="Jeans"
)
ORACLE = simulation.Oracle.for_items([JACKET, JEANS], noise=0.0)


def test_oracle_match_is_the_share_of_request_attributes_the_item_has() -> None:
    assert ORACLE.match("a red casual jacket", JACKET) == 1.0
    assert ORACLE.match("red jackets for men", JACKET) == 1.0  # plural and gender words count
    assert ORACLE.match("a red casual jacket", JEANS) == pytest.approx(1 / 3)  # only "casual"
    assert ORACLE.match("something nice", JACKET) == 0.0  # names no attribute


def test_oracle_labels_on_the_study_scale_with_seeded_noise() -> None:
    rng = random.Random(0)
    assert ORACLE.label("red casual jacket", JACKET, (0, 1, 2, 3), rng) == 3
    assert ORACLE.label("red casual jacket", JEANS, (0, 1, 2, 3), rng) == 1
    assert ORACLE.label("red casual jacket", JEANS, (1, 2, 3, 4, 5), rng) == 2
    noisy = simulation.Oracle(ORACLE.vocabulary, noise=1.0)
    labels = [noisy.label("red casual jacket", JEANS, (0, 1, 2, 3), random.Random(s)) for s in range(50)]
    assert set(labels) > {1} and all(0 <= v <= 3 for v in labels)
    again = [noisy.label("red casual jacket", JEANS, (0, 1, 2, 3), random.Random(s)) for s in range(50)]
    assert labels == again


def test_request_pool_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "requests.txt"
    path.write_text("# shoppers\nred casual jacket\n\nnavy formal shirt for men\n")
    assert simulation.read_request_pool(str(path)) == ["red casual jacket", "navy formal shirt for men"]
    path.write_text("# nothing\n")
    with pytest.raises(ValueError):
        simulation.read_request_pool(str(path))


@flow
def test_bots_finish_the_study_and_are_analysed_apart(study: Study, capsys) -> None:
    Study.objects.filter(pk=study.pk).update(
        practice_request=True, attention_checks=True, ask_list_preference=True, status=Study.Status.DRAFT
    )
    QuestionnaireItem.objects.create(study=study, text="The lists matched my requests.")
    call_command("simulate_participants", study.slug, "--n", "3", "--seed", "4", "--wait", "60")
    bots = Participant.objects.filter(study=study)
    assert [b.origin for b in bots] == ["simulated"] * 3
    assert all(b.phase == Participant.Phase.DONE for b in bots)
    per_bot = 3 * study.k * 2  # practice + 2 requests, two lists of k
    assert Judgement.objects.filter(participant__in=bots).count() == 3 * per_bot
    assert all(b.answers.count() == 1 for b in bots)
    assert not study.is_locked()
    assert reporting.build_study_report(study, n_resamples=50).n_participants == 0
    page = analysis_page.analysis_page(study, Participant.Origin.SIMULATED, n_resamples=50)
    assert page.report.n_participants == 3 and page.report.n_requests == 6
    assert page.minutes is not None and page.minutes["median"] > 2  # simulated think times
    assert "3 simulated participants (3 finished)" in capsys.readouterr().out


@flow
def test_careless_bots_fail_attention_checks_and_are_flagged_fast(study: Study) -> None:
    Study.objects.filter(pk=study.pk).update(attention_checks=True, attention_failures_allowed=0)
    study.refresh_from_db()
    bots = simulation.simulate(study, 6, seed=1, careless=1.0, wait_seconds=60)
    quality = analysis_page.analysis_page(study, Participant.Origin.SIMULATED, n_resamples=50).quality
    assert all("fast" in q.flags for q in quality)
    # Random labels on a 0-3 scale call the check item relevant half the time, so each bot escapes
    # with chance 1/4 (two requests): all six escaping (p = 0.0002) is the only way this fails.
    assert any(b.phase == Participant.Phase.SCREENED_OUT for b in bots)


def test_command_refuses_unknown_study_and_bad_arguments(study: Study) -> None:
    with pytest.raises(CommandError, match="no study"):
        call_command("simulate_participants", "nope")
    with pytest.raises(CommandError, match="--careless"):
        call_command("simulate_participants", study.slug, "--careless", "2")
    with pytest.raises(CommandError, match="No such file"):
        call_command("simulate_participants", study.slug, "--requests-file", "/nonexistent")
