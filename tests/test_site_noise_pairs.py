"""Pass criteria of the unknown-noise and several-pairs pages, read from the BUILT pages.

Run ``make html`` first; a missing build is a failure, not a skip.
"""

from __future__ import annotations

import re

from conftest import printed_output as printed


def test_noise_level_mean_over_ten_draws_is_within_3_percent():
    out = printed("plot_unknown_noise")
    assert re.search(r"noise draws: seeds 0 to 9, true sigma 0\.02\b", out), out
    (mean,) = re.findall(r"^mean estimated sigma \(ML\): ([0-9.]+);", out, re.M)
    assert abs(float(mean) / 0.02 - 1) <= 0.03
    (corrected,) = re.findall(r"^mean estimated sigma \(corrected\): ([0-9.]+);", out, re.M)
    assert abs(float(corrected) / 0.02 - 1) <= 0.03
    # each of the ten draws is printed, and the mean printed is their mean
    rows = re.findall(r"^\s+(\d)\s+[0-9.]+\s+\d+\s+([0-9.]+)\s+[0-9.]+\s+[0-9.]+\s+[0-9.e+-]+$", out, re.M)
    assert [int(seed) for seed, _ in rows] == list(range(10))
    assert abs(sum(float(s) for _, s in rows) / 10 - float(mean)) < 2e-6


def test_wrong_kernels_overestimate_the_noise():
    out = printed("plot_unknown_noise")
    (no_blur, box) = re.findall(
        r"^sigma from the residual with no blur: ([0-9.]+); with the 15×15 box: ([0-9.]+)$", out, re.M
    )[0]
    assert float(no_blur) > 2 * 0.02 and float(box) > 2 * 0.02


def test_eight_pairs_beat_one_pair_in_at_least_9_of_10_seeds():
    out = printed("plot_several_pairs")
    counts = re.findall(r"^n=8 beats n=1 in (\d+) of (\d+) seeds$", out, re.M)
    assert counts, out
    wins, seeds = map(int, counts[-1])
    assert seeds == 10 and wins >= 9
    # the count agrees with the per-seed table
    rows = re.findall(r"^\s+(\d+)((?:\s+[0-9.]+){5})\s+(yes|no)$", out, re.M)
    assert len(rows) == 10
    m1_m8 = [(float(v.split()[0]), float(v.split()[3])) for _, v, _ in rows]
    assert sum(e8 < e1 for e1, e8 in m1_m8) == wins


def test_mean_error_falls_with_the_number_of_pairs():
    out = printed("plot_several_pairs")
    means = {int(m): float(e) for m, e in re.findall(r"^\s*(\d+) pairs: mean relative kernel error ([0-9.]+)", out, re.M)}
    assert sorted(means) == [1, 2, 4, 8, 16]
    assert all(means[a] > means[b] for a, b in zip([1, 2, 4, 8], [2, 4, 8, 16]))


def test_batch_projection_contrast():
    out = printed("plot_several_pairs")
    ((own, whole),) = re.findall(
        r"^batch of 4 kernels: per-kernel projection ([0-9.]+), whole-batch projection ([0-9.]+)$", out, re.M
    )
    assert float(own) < 0.1 < 0.5 < float(whole)
