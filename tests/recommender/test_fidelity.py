"""Request fidelity: contrastive masking, the probe's verdict and exit codes, the benchmark's cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from recommender.__main__ import main
from recommender.catalog import CatalogItem
from recommender.losses import info_nce_loss
from recommender.training.fidelity import CONDITIONS, AttributeTable, build_cases, case_scores
from tests.recommender.checkpoints import write_checkpoint


def test_info_nce_masks_other_relevant_items_out_of_the_negatives() -> None:
    torch.manual_seed(0)
    q = F.normalize(torch.randn(3, 8), dim=-1)
    p = F.normalize(torch.randn(3, 8), dim=-1)
    ids = torch.tensor([10, 11, 12])
    relevant = torch.tensor([[10, 11], [11, -1], [12, -1]])  # item 11 is also right for query 0
    got = info_nce_loss(q, p, 0.1, ids, relevant)
    logits = q @ p.T / 0.1
    expected = (
        -torch.log_softmax(logits[0, [0, 2]], dim=0)[0]  # column 1 is not a negative for query 0
        - torch.log_softmax(logits[1], dim=0)[1]
        - torch.log_softmax(logits[2], dim=0)[2]
    ) / 3
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert info_nce_loss(q, p, 0.1, ids).item() != pytest.approx(got.item(), rel=1e-5)


def test_training_passes_known_relevant_items_to_the_contrastive_term(
    encoder, tiny_catalog: list[CatalogItem], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import recommender.training.train as train_module
    from recommender.model import WhisperLiteConfig
    from recommender.training.simulation import simulate_shoppers

    seen: list[bool] = []
    real = train_module.composite_loss

    def spy(config, query, positives, negatives, positive_ids=None, neg_mask=None, relevant=None):  # type: ignore[no-untyped-def]
        assert relevant is not None and relevant.shape[0] == query.shape[0]
        # Is some other row's target in a query's relevant set (what the mask removes)?
        hit = (positive_ids.view(1, -1, 1) == relevant.unsqueeze(1)).any(-1)
        hit.fill_diagonal_(False)
        seen.append(bool(hit.any()))
        return real(config, query, positives, negatives, positive_ids, neg_mask, relevant)

    monkeypatch.setattr(train_module, "composite_loss", spy)
    sim = simulate_shoppers(tiny_catalog, n_shoppers=40, n_events=5, seed=0)
    prep = train_module.prepare(sim.dataset, encoder, tmp_path, progress=False)
    train_module.train_whisperlite(
        prep, WhisperLiteConfig(epochs=1, batch_size=32, hidden_dim=32), progress=False
    )
    assert seen and any(seen)


def test_fidelity_cases_pair_every_request_with_four_histories(tiny_catalog: list[CatalogItem]) -> None:
    cases = build_cases(tiny_catalog, n_requests=10, seed=0)
    assert len(cases) == 40 and [c.condition for c in cases[:4]] == list(CONDITIONS)
    table = AttributeTable(tiny_catalog)
    for case in cases:
        colours = {table.value(h, "baseColour") for h in case.history}
        assert not colours & case.wanted["baseColour"]  # every history avoids the named colour
        if case.condition == "conflicting":
            assert len(colours) == 1
        if case.condition == "same_type":
            assert {table.value(h, "articleType") for h in case.history} <= case.wanted["articleType"]
    # Scoring: a list entirely in the history's colour has precision 0 and pull 1 for colour.
    case = cases[3]
    top = [
        i.item_id
        for i in tiny_catalog
        if i.attributes["baseColour"] == table.value(case.history[0], "baseColour")
    ]
    scores = case_scores(table, case, top[:4])
    assert scores["p:baseColour"] == 0.0 and scores["pull"] > 0


@pytest.mark.slow
def test_probe_passes_a_listening_checkpoint_and_fails_one_whose_history_overrides(
    encoder, sample_catalog_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    good = write_checkpoint(tmp_path / "good.pt", encoder.encoder_id, encoder.dim, history_overrides=False)
    bad = write_checkpoint(tmp_path / "bad.pt", encoder.encoder_id, encoder.dim, history_overrides=True)
    common = [
        "--catalog",
        f"generic:{sample_catalog_csv}",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--fashioniq",
        "none",
    ]
    assert main(["probe", str(good), *common, "--no-examples"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["probe", str(bad), *common]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "history pull" in out and "a black dress for a funeral" in out
    assert main(["probe", str(tmp_path / "missing.pt"), *common]) == 2
