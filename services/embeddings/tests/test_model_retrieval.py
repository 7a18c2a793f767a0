"""Retrieval scoring and `make eval`'s output, on hand-made vectors and on the shipped identities."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pawgle.embeddings.model import evaluate
from pawgle.embeddings.model.retrieval import match_rates_at, pair_similarities, retrieval_scores

from .conftest import DATA

LAST_LINE = re.compile(
    r"^top-1 [01]\.\d{3}, top-5 [01]\.\d{3} \(instance\); top-1 [01]\.\d{3}, top-5 [01]\.\d{3} \(mean gallery\); "
    r"\d+ identities, \d+ images$"
)


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_perfectly_separated_animals_score_one() -> None:
    vectors = unit([[1, 0.1, 0], [1, -0.1, 0], [0, 1, 0.1], [0, 1, -0.1], [0, 0, 1]])
    scores = retrieval_scores(vectors, ["a", "a", "b", "b", "c"])
    assert (scores.instance_top1, scores.gallery_top1, scores.identities, scores.images) == (1.0, 1.0, 3, 5)


def test_a_photo_nearer_another_animal_misses_at_top_1_but_not_top_5() -> None:
    # a2 lies closer to the two photos of b than to a1: its query misses at top-1; the other three are right.
    vectors = unit([[1, 0, 0], [0.3, 1, 0], [0, 1, 0.05], [0, 1, -0.05]])
    scores = retrieval_scores(vectors, ["a", "a", "b", "b"])
    assert scores.instance_top1 == pytest.approx(0.75)
    assert scores.instance_top5 == 1.0


def test_match_rates_count_pairs_at_or_above_the_threshold() -> None:
    vectors = unit([[1, 0], [1, 0.2], [0, 1]])
    same, different = pair_similarities(vectors, ["a", "a", "b"])
    assert (len(same), len(different)) == (1, 2)
    assert match_rates_at(0.9, same, different) == (1.0, 0.0)


def test_eval_ends_with_the_summary_line_on_the_shipped_identities(capsys: pytest.CaptureFixture[str]) -> None:
    evaluate.main(["--data", str(DATA / "identities")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    assert any(line.startswith("generic: top-1") for line in lines)
    assert any(line.startswith("identity: top-1") for line in lines)
    assert lines[-1].endswith("6 identities, 24 images")
