"""Sphinx configuration of the calibration gallery.

Build from the repository root with ``make html`` (``sphinx-build -b html -c . docs _build/html``).
Paths to static files resolve from this folder; gallery paths resolve from ``docs/``.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Progress bars: a live bar is useful in a terminal or a notebook, but the HTML page only keeps
# its redraws as garbage.  Examples call tqdm with default arguments, so this silences them here.
os.environ.setdefault("TQDM_DISABLE", "1")
# Plots in the build are rendered off-screen.
os.environ.setdefault("MPLBACKEND", "agg")

sys.path.insert(0, str(HERE / "docs" / "_ext"))
# The pages import their shared helpers from examples/calibration_helpers.py.
sys.path.insert(0, str(HERE / "examples"))

# -- Project ---------------------------------------------------------------------------------------
project = "Calibrating imaging physics"
author = "The calibration gallery authors"
copyright = "2026, The calibration gallery authors"
release = "0.1"

# -- Extensions ------------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",  # the page of shared helpers
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
    "sphinx-mathjax-offline",  # serves MathJax 3 from _static instead of a CDN
    "offline_assets",  # docs/_ext: keeps the execution-times pages free of CDN scripts
    # docs/_ext: intersphinx inventories of deepinv/torch, made from the installed packages
    "api_inventory",
    "sphinx_copybutton",  # a copy button on every code block (its JS/CSS ship in _static)
    # docs/_ext: notebooks that install what is missing, with readable links and macros
    "notebooks",
]

templates_path = ["docs/_templates"]
exclude_patterns = ["_build", "**/*.ipynb", "**/*.py.md5", "**/*.zip"]
nitpicky = True

# -- Gallery ---------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "ignore_pattern": r"__init__\.py|calibration_helpers\.py",  # the shared helpers are no page
    "subsection_order": [
        "../examples/calibration",
        "../examples/beyond",
        "../examples/checking",
        "../examples/field",
        "../examples/blackbox",
        "../examples/blind",
    ],
    "within_subsection_order": "gallery_order.ExampleOrder",
    "remove_config_comments": True,  # hide the "sphinx_gallery_thumbnail_number" lines
    "capture_repr": (),  # a page shows what it prints, not the value of a cell's last line
    "image_srcset": ["2x"],  # figures stay sharp on high-density screens
}

# -- HTML output -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "Calibrating imaging physics"
html_static_path = ["docs/_static"]
html_css_files = ["gallery.css"]
html_js_files = ["sortable_tables.js"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sg_download_links", "sg_launcher_links"],
    "footer_end": [],
}
html_show_sourcelink = False
# Light or dark follows the reader's system setting until the switch in the header is used (an
# empty mode makes the theme's script log an error in the browser console).
html_context = {"default_mode": "auto"}

# -- Copy buttons ----------------------------------------------------------------------------------
# Copy the code only: interactive prompts (">>> ", "... ", "$ ") and output lines are left out.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = False
copybutton_exclude = ".linenos, .gp, .go"

# -- Math ------------------------------------------------------------------------------------------
# Notation of the pages: y = N(A(x, theta)).  MathJax 3 reads these macros.
mathjax3_config = {
    "tex": {
        "macros": {
            "forw": [r"A\left(#1\right)", 1],
            "noise": [r"N\left(#1\right)", 1],
            "simplex": r"\Delta",
            "argmin": r"\operatorname*{arg\,min}",
        }
    }
}
