"""Reading order of the gallery pages (passed to sphinx-gallery by dotted name)."""

import os

#: Pages in the order a reader should meet them, within their section; any other script follows,
#: by file name.  One tuple for all sections (file names are unique across the gallery).
READING_ORDER = (
    "plot_motion_blur_kernels.py",
    "plot_projected_gradient.py",
    "plot_adam_projection.py",
    "plot_adamw_l1.py",
    "plot_quadratic_loss.py",
    "plot_exact_solver.py",
    "plot_comparison.py",
    "plot_gaussian_psf.py",
    "plot_zernike_psf.py",
    "plot_unknown_noise.py",
    "plot_several_pairs.py",
    "plot_robustness.py",
    "plot_mismatch_gain.py",
    "plot_mismatch_shift.py",
    "plot_mismatch_support.py",
    "plot_residual_checks.py",
    "plot_kernel_uncertainty.py",
    "plot_held_out_support.py",
    "plot_field_of_kernels.py",
    "plot_identify_resizers.py",
    "plot_why_the_operator_matters.py",
    "plot_blind_deconvolution.py",
)


class ExampleOrder:
    """Sort key for ``within_subsection_order``: the reading order above, then the file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        rank = READING_ORDER.index(name) if name in READING_ORDER else len(READING_ORDER)
        return (rank, name)

    def __repr__(self):
        return f"{self.__class__.__name__}()"
