"""Checks of the built site in _build/html (run ``make html`` first; ``make test`` does it all).

A missing build is a failure, not a skip.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from bs4 import BeautifulSoup

from conftest import EXAMPLES, GALLERY, ROOT, SITE, example_html, output_blocks, printed_table, soup
from reference import default_floor

# page -> (row of its results table on the default problem, allowed ratio to the exact floor)
CALIBRATION_PAGES = {
    "plot_projected_gradient": ("recipe", 1.2),
    "plot_adam_projection": ("default, new recipe", 1.2),
    "plot_adamw_l1": ("default, new recipe", 1.4),
    "plot_exact_solver": ("exact minimiser", 1.01),  # the floor itself, printed to four digits
    "plot_comparison": ("exact route", 1.01),
}
HTML_FILES = sorted(SITE.rglob("*.html")) if SITE.is_dir() else []


def is_remote(url: str | None) -> bool:
    if not url:
        return False
    parsed = urlparse(url.strip())
    return bool(parsed.netloc) or parsed.scheme in ("http", "https")


def test_site_is_built():
    assert (SITE / "index.html").is_file(), "build the site first: make html"
    assert len(HTML_FILES) >= 8


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_page_has_figures_output_downloads_and_time(path):
    page = example_html(path.stem)
    doc = soup(page)
    images = doc.select("img.sphx-glr-single-img, img.sphx-glr-multi-img")
    assert images, "no figure rendered"
    for img in images:
        assert (page.parent / img["src"]).is_file(), img["src"]
    assert output_blocks(page), "no printed output rendered"
    links = {a["href"] for a in doc.select("div.sphx-glr-download a")}
    for suffix in (".py", ".ipynb"):
        target = [h for h in links if h.endswith(path.stem + suffix)]
        assert target, f"no {suffix} download link"
        assert (page.parent / target[0]).is_file()
    assert "Total running time of the script" in doc.get_text()


def test_gallery_index_has_thumbnails_and_zips():
    page = GALLERY / "index.html"
    doc = soup(page)
    thumbs = doc.select("div.sphx-glr-thumbcontainer img")
    assert len(thumbs) >= len(EXAMPLES)
    for img in thumbs:
        assert (page.parent / img["src"]).is_file()
    zips = [a["href"] for a in doc.select("a") if a.get("href", "").endswith(".zip")]
    assert len(zips) >= 2, "the python and notebook zips of all examples"
    for href in zips:
        assert (page.parent / href).is_file()


def test_execution_times_pages_exist_and_list_every_example():
    site_wide = soup(SITE / "sg_execution_times.html").get_text()
    for path in EXAMPLES:
        assert path.stem in site_wide, f"{path.stem} missing from the site-wide execution times"
        section = GALLERY / path.parent.name / "sg_execution_times.html"
        assert path.stem in soup(section).get_text(), f"{path.stem} missing from {section}"


def remote_loads(html: str) -> list[str]:
    """Every script, style sheet, font, image or frame that ``html`` would load from another
    host."""
    doc = BeautifulSoup(html, "html.parser")
    remote = []
    for tag in doc.find_all(["script", "img", "iframe", "source", "video", "audio", "embed"]):
        for attr in ("src", "srcset", "data"):
            for candidate in (tag.get(attr) or "").split(","):
                url = candidate.strip().split(" ")[0]
                if is_remote(url):
                    remote.append(f"<{tag.name} {attr}={url}>")
    for tag in doc.find_all("link"):
        rel = " ".join(tag.get("rel", []))
        if any(r in rel for r in ("stylesheet", "preload", "icon", "modulepreload", "prefetch")):
            if is_remote(tag.get("href")):
                remote.append(f"<link rel={rel} href={tag['href']}>")
    for style in doc.find_all("style"):
        remote += re.findall(r"(?:url\(|@import)\s*['\"]?(?:https?:)?//[^)'\"]+", style.get_text())
    return remote


def test_remote_load_detector_catches_what_it_should():
    page = """<html><head>
    <link rel="stylesheet" href="https://cdn.example.org/a.css">
    <link rel="canonical" href="https://deepinv.org/">
    <script src="//code.example.com/jquery.js"></script>
    <script src="_static/local.js"></script>
    <style>@font-face { src: url(https://fonts.example.com/f.woff2); }</style>
    </head><body><img src="http://example.com/x.png"><img src="images/y.png">
    <a href="https://deepinv.org/api/stubs/deepinv.physics.Blur.html">a link is not a load</a>
    </body></html>"""
    assert len(remote_loads(page)) == 4


@pytest.mark.parametrize("page", HTML_FILES, ids=lambda p: str(p.relative_to(SITE)))
def test_page_loads_nothing_from_another_host(page):
    remote = remote_loads(page.read_text(encoding="utf-8"))
    assert not remote, remote


def test_static_css_loads_nothing_from_another_host():
    offenders = []
    for css in (SITE / "_static").rglob("*.css"):
        for match in re.findall(
            r"(?:url\(|@import)\s*['\"]?(?:https?:)?//[^)'\";]+", css.read_text(errors="ignore")
        ):
            offenders.append(f"{css.relative_to(SITE)}: {match}")
    assert not offenders, offenders


def test_mathjax_is_served_from_the_build():
    page = example_html("plot_projected_gradient")
    scripts = [s.get("src", "") for s in soup(page).find_all("script")]
    mathjax = [s for s in scripts if "mathjax" in s.lower()]
    assert mathjax, "no MathJax on a page with equations"
    for src in mathjax:
        assert not is_remote(src)
        assert (page.parent / src.split("?")[0]).is_file(), src


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_output_blocks_are_clean(path):
    for block in output_blocks(example_html(path.stem)):
        assert "\r" not in block
        assert not re.search(r"\d+%\|", block), "progress-bar redraws in the output"
        assert not re.search(r"it/s\]", block), "progress-bar redraws in the output"
        assert "Warning" not in block and "warn(" not in block, block
        assert str(ROOT) not in block and "site-packages" not in block, (
            "a file path of this machine"
        )


@pytest.fixture(scope="module")
def floor():
    return default_floor()


@pytest.mark.parametrize("stem", sorted(CALIBRATION_PAGES))
def test_printed_kernel_error_is_near_the_exact_floor(stem, floor):
    row, bound = CALIBRATION_PAGES[stem]
    values = printed_table(stem)[row]
    error = values["kernel error"] if "kernel error" in values else values["error"]
    print(f"{stem}: error {error:.4f}, floor {floor:.4f}, ratio {error / floor:.3f}")
    assert error / floor <= bound
