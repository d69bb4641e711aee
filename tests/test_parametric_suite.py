"""The parametric PSF pages' fits on problems of the suite they were not tuned on (reduced size).

``make suite`` runs every problem at full size; here one photograph other than the pages' own,
at 96×96, against the pages' criteria (widths 5 %, angle 3°; coefficients 10 %, 1.2× the floor).
"""

from __future__ import annotations

import pytest

import suite
from run_parametric_suite import gaussian_row, zernike_namespace, zernike_row


@pytest.fixture(scope="module")
def zernike_state():
    return zernike_namespace()


@pytest.mark.parametrize("index", [6], ids=lambda i: suite.PROBLEMS[i].photo)
def test_the_parametric_fits_hold_on_other_photographs(index, zernike_state):
    problem = suite.PROBLEMS[index]
    gaussian = gaussian_row(problem, suite.REDUCED_SIZE)
    zernike = zernike_row(problem, suite.REDUCED_SIZE, zernike_state)
    print(problem.name, gaussian, zernike)
    assert gaussian["holds"] == "yes" and zernike["holds"] == "yes"
