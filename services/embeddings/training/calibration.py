"""Pick the automatch and search thresholds from held-out pairs, by the false-match rate each may have."""

from __future__ import annotations

import numpy as np

from pawgle.embeddings.model.retrieval import match_rates_at, pair_similarities

# Automatch links a report to a pet without a person looking: at most 1 in 10,000 pairs of different
# animals may clear it. Search shows a ranked list to a person: 1 in 100 may clear it.
AUTOMATCH_FALSE_MATCH_RATE = 1e-4
SEARCH_FALSE_MATCH_RATE = 1e-2


def threshold_for(different: np.ndarray, false_match_rate: float) -> float:
    """The lowest similarity (rounded up to 0.01) that at most this share of different-animal pairs reach."""
    quantile = float(np.quantile(different, 1.0 - false_match_rate))
    return float(np.ceil(quantile * 100) / 100)


def calibrate_thresholds(vectors: np.ndarray, identities: list[str]) -> dict[str, float | int]:
    """Both thresholds and the measured true/false-match rates at them."""
    same, different = pair_similarities(vectors, identities)
    automatch = threshold_for(different, AUTOMATCH_FALSE_MATCH_RATE)
    search = threshold_for(different, SEARCH_FALSE_MATCH_RATE)
    automatch_tmr, automatch_fmr = match_rates_at(automatch, same, different)
    search_tmr, search_fmr = match_rates_at(search, same, different)
    return {
        "automatch_min_similarity": automatch,
        "automatch_true_match_rate": round(automatch_tmr, 4),
        "automatch_false_match_rate": round(automatch_fmr, 6),
        "search_min_similarity": search,
        "search_true_match_rate": round(search_tmr, 4),
        "search_false_match_rate": round(search_fmr, 6),
        "same_animal_pairs": int(len(same)),
        "different_animal_pairs": int(len(different)),
    }
