"""Small end-to-end study reports with hand-checkable numbers, from typed records (no database)."""

from __future__ import annotations

import dataclasses
import json
from math import log2

import krippendorff
import pytest

from studyapp.analysis.plots import metric_bars_svg, position_bias_svg
from studyapp.analysis.records import Credit, JudgementRecord
from studyapp.analysis.report import build_report, report_to_dict, report_to_text
from studyapp.design import GRADED4, Mode

_ids = iter(range(1, 1_000_000))


def row(p, req, system, rank, pos, item, label, check=False, practice=False, team=None, credits=None):
    """One judgement; credited to ``system`` at ``rank`` (a check is credited to nobody)."""
    if credits is None:
        credits = () if check else (Credit(system, rank),)
    return JudgementRecord(
        participant_id=p, request_id=req, judgement_id=next(_ids), item_id=item, displayed_position=pos,
        label=label, credits=credits, team=team, is_attention_check=check, is_practice=practice,
        request_text="a shared prompt",  # agreement units are (request text, item)
    )  # fmt: skip


def side_by_side_rows() -> list[dict]:
    rows = []
    # p1/r1: X = [3, 0, 2], Y = [0, 2, can't judge]
    # p2/r2: X = [2, 2, 2], Y = [0, 0, 0]
    for p, req, xs, ys in [("p1", "r1", [3, 0, 2], [0, 2, None]), ("p2", "r2", [2, 2, 2], [0, 0, 0])]:
        for rank, (item, lab) in enumerate(zip("abc", xs, strict=True), start=1):
            rows.append(row(p, req, "X", rank, rank, item, lab))
        for rank, (item, lab) in enumerate(zip("def", ys, strict=True), start=1):
            rows.append(row(p, req, "Y", rank, rank, item, lab))
    # Practice row in a real request: if it were used, Y's rank 1 in r1 would become a 3.
    rows.append(row("p1", "r1", "Y", 1, 1, "d", 3, practice=True))
    # Failed attention check (known-irrelevant item judged 3) at X position 2.
    rows.append(row("p2", "r2", "X", None, 2, "check", 3, check=True))
    return rows


def test_side_by_side_report_numbers() -> None:
    rep = build_report(side_by_side_rows(), GRADED4, k=3, mode="side_by_side", seed=0, n_resamples=500)
    assert (rep.n_participants, rep.n_requests, rep.n_judgements, rep.n_cant_judge) == (2, 2, 12, 1)
    assert (rep.n_excluded_practice, rep.n_excluded_attention) == (1, 1)
    x, y = rep.systems
    assert (x.system, y.system) == ("X", "Y")
    # P@3: X = (2/3 + 3/3) / 2 = 5/6; Y = (1/2 [condensed 0, 2] + 0) / 2 = 1/4.
    assert x.metrics["precision"].mean == pytest.approx(5 / 6)
    assert y.metrics["precision"].mean == pytest.approx(1 / 4)
    # MRR: X = (1 + 1) / 2 = 1; Y = (1/2 + 0) / 2 = 1/4.
    assert x.metrics["mrr"].mean == pytest.approx(1.0)
    assert y.metrics["mrr"].mean == pytest.approx(1 / 4)
    # nDCG@3: X r1 = (7 + 3/log2 4) / (7 + 3/log2 3); X r2 = 1. Y r1 = (3/log2 3) / 3; Y r2 = 0.
    x_r1 = (7 + 3 / log2(4)) / (7 + 3 / log2(3))
    assert x.metrics["ndcg"].mean == pytest.approx((x_r1 + 1) / 2)
    assert y.metrics["ndcg"].mean == pytest.approx((1 / log2(3)) / 2)
    assert x.metrics["precision"].ci_low <= x.metrics["precision"].mean <= x.metrics["precision"].ci_high

    prec = next(c for c in rep.comparisons if c.metric == "precision")
    assert (prec.system_a, prec.system_b, prec.n_pairs) == ("X", "Y", 2)
    assert prec.mean_diff == pytest.approx(5 / 6 - 1 / 4)
    assert prec.p_value == pytest.approx(0.5)  # 2 positive differences: exact p = 2 * 1/4
    assert "unreachable" in prec.note
    assert rep.interleaving is None

    # Position bias (normalised labels): X position 1 = (3 + 2) / 2; attention check excluded
    # from X position 2 = (0 + 2) / 2; Y position 3 has one judged label and one can't judge.
    pb = {(p.system, p.position): p for p in rep.position_bias}
    assert pb[("X", 1)].mean_label == pytest.approx(2.5) and pb[("X", 1)].n == 2
    assert pb[("X", 2)].mean_label == pytest.approx(1.0)
    assert (pb[("Y", 3)].n, pb[("Y", 3)].n_cant_judge, pb[("Y", 3)].mean_label) == (1, 1, 0.0)

    # Agreement over items judged by both participants: a, b, c, d, e (f: p1 can't judge).
    expected = krippendorff.alpha(
        [[3, 0, 2, 0, 2], [2, 2, 2, 0, 0]], level_of_measurement="ordinal", value_domain=[0, 1, 2, 3]
    )
    assert rep.agreement.n_units == 5
    assert rep.agreement.alpha == pytest.approx(expected)

    assert rep.attention.n_checks == 1 and rep.attention.n_failed == 1
    assert rep.attention.failed_participants == ["p2"]


def test_report_serialisation_text_and_plots() -> None:
    rep = build_report(side_by_side_rows(), GRADED4, k=3, mode=Mode.SIDE_BY_SIDE, seed=0, n_resamples=200)
    d = report_to_dict(rep)
    assert json.loads(json.dumps(d))["systems"][0]["system"] == "X"
    text = report_to_text(rep)
    for needle in ("P@3", "nDCG@3", "MRR", "Krippendorff", "1 of 1 checks failed"):
        assert needle in text
    bars = metric_bars_svg(rep)
    assert bars.startswith("<svg") and "<title>" in bars and 'role="img"' in bars
    assert "aria-label" in position_bias_svg(rep)
    assert (
        build_report(side_by_side_rows(), GRADED4, 3, "side_by_side", 0, n_resamples=200) == rep
    )  # deterministic


def test_svg_escapes_system_names() -> None:
    rows = [
        dataclasses.replace(r, credits=(Credit("<b>&x", r.credits[0].rank),))
        if r.credits and r.credits[0].system == "X"
        else r
        for r in side_by_side_rows()
    ]
    rep = build_report(rows, GRADED4, k=3, mode="side_by_side", n_resamples=100)
    for svg in (metric_bars_svg(rep), position_bias_svg(rep)):
        assert "<b>" not in svg and "&lt;b&gt;&amp;x" in svg


def test_interleaving_report() -> None:
    rows = []
    # Credits (clicks = label >= 2): r1 X 2 vs Y 1 (win); r2 X 1 vs Y 1 (tie); r3 X 1 vs Y 0 (win).
    plan = {
        "r1": [("X", 3), ("Y", 2), ("X", 2), ("Y", 0)],
        "r2": [("Y", 3), ("X", 2), ("Y", 1), ("X", None)],
        "r3": [("X", 2), ("Y", 1), ("X", 0), ("Y", 0)],
    }
    for req, slots in plan.items():
        for pos, (team, lab) in enumerate(slots, start=1):
            rows.append(row("p1", req, team, (pos + 1) // 2, pos, f"{req}-{pos}", lab, team=team))
    rows.append(row("p1", "r3", "", None, 5, "chk", 3, check=True))  # would make r3 a tie if counted
    rep = build_report(rows, GRADED4, k=2, mode=Mode.INTERLEAVED, n_resamples=100)
    (res,) = rep.interleaving
    assert (res.system_a, res.system_b, res.wins, res.ties, res.losses) == ("X", "Y", 2, 1, 0)
    assert res.p_value == pytest.approx(0.5)  # sign test on 2 wins, 0 losses: 2 * 1/4
    assert any("Interleaving" in n for n in rep.notes)


def test_pool_shared_item_credited_to_both() -> None:
    # Item "s" shown once at position 1, ranked 1 by X and 2 by Y: one judgement, two credits.
    rows = [
        row("p1", "r1", "", None, 1, "s", 3, credits=(Credit("X", 1), Credit("Y", 2))),
        row("p1", "r1", "X", 2, 2, "x2", 0), row("p1", "r1", "Y", 1, 3, "y1", 0),
    ]  # fmt: skip
    rep = build_report(rows, GRADED4, k=2, mode=Mode.POOLED, n_resamples=100)
    x, y = rep.systems
    assert x.metrics["mrr"].mean == 1.0 and y.metrics["mrr"].mean == 0.5
    assert rep.n_judgements == 3  # the shared item counts once


def test_unknown_mode() -> None:
    with pytest.raises(ValueError):
        build_report([], GRADED4, k=3, mode="carousel")
