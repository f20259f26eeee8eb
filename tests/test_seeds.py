"""Summaries over seeds: means with the extremes, records matched by their identity."""

import pytest

from orthocore.study.seeds import SEED_STRIDE, model_seed, summarize, summarize_table


def test_numbers_become_means_with_extremes_only_where_seeds_differ():
    seeds = [
        {"name": "m", "eps": 0.1, "ratio": 10.0, "per_eps": [1.0, 4.0], "delta": {"abs_mean": 0.2}},
        {"name": "m", "eps": 0.1, "ratio": 30.0, "per_eps": [3.0, 2.0], "delta": {"abs_mean": 0.4}},
    ]
    summary = summarize(seeds)
    assert summary["name"] == "m" and summary["eps"] == 0.1 and "eps_min" not in summary
    assert (summary["ratio"], summary["ratio_min"], summary["ratio_max"]) == (20.0, 10.0, 30.0)
    assert summary["per_eps"] == [2.0, 3.0]
    assert (summary["per_eps_min"], summary["per_eps_max"]) == ([1.0, 2.0], [3.0, 4.0])
    assert summary["delta"]["abs_mean"] == pytest.approx(0.3) and summary["delta"]["abs_mean_max"] == 0.4


def test_a_missing_number_gives_none_and_differing_names_are_an_error():
    assert summarize([{"seconds": 3.0}, {"seconds": None}])["seconds"] is None
    with pytest.raises(ValueError, match="differs between seeds"):
        summarize([{"role": "ordinary"}, {"role": "orthogonal"}])


def test_tables_are_matched_by_identity_not_position():
    first = [{"target": "a", "eps": 0.1, "ratio": 10.0}, {"target": "b", "eps": 0.1, "ratio": 50.0}]
    second = [{"target": "b", "eps": 0.1, "ratio": 70.0}, {"target": "a", "eps": 0.1, "ratio": 20.0}]
    table = summarize_table([first, second], ("target", "eps"))
    assert [(r["target"], r["ratio"]) for r in table] == [("a", 15.0), ("b", 60.0)]
    with pytest.raises(ValueError, match="missing from seed #1"):
        summarize_table([first, second[:1]], ("target", "eps"))


def test_model_seeds_of_different_study_seeds_never_meet():
    used = [{model_seed(seed, offset) for offset in range(SEED_STRIDE)} for seed in range(3)]
    assert not (used[0] & used[1]) and not (used[1] & used[2])
    assert model_seed(0, 1) == 1 and model_seed(2, 1) == 2 * SEED_STRIDE + 1
