"""Pass criteria of the unknown-noise and several-pairs pages, read from the BUILT pages' results.

Run ``make html`` first; a missing build, table or row is a failure, not a skip.
"""

from __future__ import annotations

from conftest import printed_table


def test_noise_level_mean_over_ten_draws_is_within_3_percent():
    row = printed_table("plot_unknown_noise")["photo, σ = 0.02"]
    assert row["draws"] == 10
    assert abs(row["ML (%)"]) <= 3 and abs(row["d (%)"]) <= 3
    assert abs(row["sigma_ML"] / 0.02 - 1) <= 0.03


def test_the_estimate_tracks_every_noise_level():
    table = printed_table("plot_unknown_noise")
    levels = [row for name, row in table.items() if name.startswith("photo, σ = ")]
    assert len(levels) == 5
    assert all(abs(row["ML (%)"]) <= 3 for row in levels)


def test_wrong_kernels_overestimate_the_noise():
    table = printed_table("plot_unknown_noise")
    for label in ("no blur", "15×15 box"):
        assert table[label]["sigma_ML"] > 2 * 0.02


def test_eight_pairs_beat_one_pair_in_at_least_9_of_10_seeds():
    row = printed_table("plot_several_pairs")["8 pairs"]
    assert row["seeds"] == 10 and row["beats 1 pair"] >= 9


def test_mean_error_falls_with_the_number_of_pairs():
    table = printed_table("plot_several_pairs")
    names = ["1 pair", "2 pairs", "4 pairs", "8 pairs", "16 pairs"]
    means = [table[name]["mean error"] for name in names]
    assert all(a > b for a, b in zip(means, means[1:])), means


def test_batch_projection_contrast():
    table = printed_table("plot_several_pairs")
    own = table["batch: per-kernel"]["mean error"]
    whole = table["batch: whole-batch"]["mean error"]
    assert own < 0.1 < 0.5 < whole
