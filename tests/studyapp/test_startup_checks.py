"""An unusable encoder setting stops the app at start-up with the reason."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from recommender.encoders import check_encoder_spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("open_clip:ViT-B-32:/no/such/checkpoint.pt", "CLIP checkpoint file not found"),
        ("open_clip:ViT-B-32:not_a_tag", "no pretrained weights tagged"),
        ("open_clip:NoSuchArch:laion2b_s34b_b79k", "unknown open_clip architecture"),
        ("open_clip:local-dir:/no/such/folder", "no open_clip_config.json"),
        ("open_clip:ViT-B-32", "needs an architecture and weights"),
        ("sentence-transformers:/no/such/model", "model folder not found"),
        ("word2vec", "unknown encoder backend"),
    ],
)
def test_encoder_spec_problems_are_found_without_loading_weights(spec: str, message: str) -> None:
    (problem,) = check_encoder_spec(spec)
    assert message in problem


@pytest.mark.parametrize(
    "spec",
    [
        "sentence-transformers",
        "open_clip:ViT-B-32:laion2b_s34b_b79k",
        "open_clip:hf-hub:Marqo/marqo-fashionCLIP",
    ],
)
def test_valid_encoder_specs_pass_the_start_up_check(spec: str) -> None:
    assert check_encoder_spec(spec) == []


def test_manage_py_check_fails_on_missing_clip_weights(settings) -> None:
    settings.WHISPERLITE_ENCODER = "open_clip:ViT-B-32:/no/such/checkpoint.pt"
    with pytest.raises(SystemCheckError, match="CLIP checkpoint file not found"):
        call_command("check")


def test_worker_start_up_loads_the_encoder(monkeypatch) -> None:
    from studyapp import ranking_service, worker_init

    loaded = []
    monkeypatch.setattr(
        ranking_service, "get_encoder", lambda: loaded.append(1) or type("E", (), {"encoder_id": "x"})()
    )

    class SoloWorker:
        pool_cls = "solo"

    class PreforkWorker:
        pool_cls = "celery.concurrency.prefork:TaskPool"

    worker_init._load_in_main_process(sender=PreforkWorker())
    assert loaded == []  # prefork children load it after the fork instead
    worker_init._load_in_main_process(sender=SoloWorker())
    worker_init._load_in_pool_process()
    assert loaded == [1, 1]
