"""The built site, opened in a real browser: headless Chromium driven by Playwright.

_build/html is served on 127.0.0.1 and Chromium (``$CHROMIUM``, else the first of chromium,
chromium-browser, google-chrome on the PATH or the usual macOS applications; Playwright drives it,
it never downloads one) opens the landing page, the gallery index, the execution-times
pages and every example page, in light and in dark mode.  On each page:

* no console error and no uncaught exception;
* no request to any host but 127.0.0.1 (such requests are recorded, then refused);
* every <img> loaded (``naturalWidth > 0``);
* math typeset by MathJax (one ``mjx-container`` per math node, no ``mjx-merror``);
* every download link answers 200 with a non-empty file;
* code blocks carry a copy button; the light/dark switch is there and dark mode really applies,
  with the figures kept on a white background.

Screenshots go to _build/screenshots/<light|dark>/<page>.png (the whole page in light mode, the
first screen in dark mode).  A missing browser or build is a failure, never a skip (.ci/run
installs Chromium on a fresh machine; elsewhere set ``CHROMIUM``).
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from conftest import EXAMPLES, SITE, find_chromium

CHROMIUM = find_chromium()
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = SITE.parent / "screenshots"
LOCAL_HOST = "127.0.0.1"


def site_pages() -> list[str]:
    """Landing page, gallery index, execution-times pages and every example page (by glob)."""
    pages = ["index.html", "auto_examples/index.html"]
    if SITE.is_dir():
        pages += sorted(str(p.relative_to(SITE)) for p in SITE.rglob("sg_execution_times.html"))
        pages += sorted(
            str(p.relative_to(SITE)) for p in (SITE / "auto_examples").rglob("plot_*.html")
        )
    return list(dict.fromkeys(pages))


PAGES = site_pages()
EXAMPLE_PAGES = [p for p in PAGES if Path(p).name.startswith("plot_")]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    assert (SITE / "index.html").is_file(), f"no built site in {SITE}: run make html first"
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOCAL_HOST}:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM and Path(CHROMIUM).is_file(), (
        "no Chromium or Chrome found: install one (apt-get install chromium) or set CHROMIUM=/path"
    )
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # an empty --user-data-dir
    with sync_playwright() as p:
        context_args = dict(viewport={"width": 1300, "height": 1000}, service_workers="block")
        contexts = {
            scheme: p.chromium.launch_persistent_context(
                str(profile / scheme),
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                color_scheme=scheme,
                **context_args,
            )
            for scheme in ("light", "dark")
        }
        yield contexts
        for context in contexts.values():
            context.close()


class PageReport:
    def __init__(self):
        self.console_errors: list[str] = []
        self.external: list[str] = []
        self.pending: set = set()  # requests sent and not yet answered


def open_page(context, url: str) -> tuple[object, PageReport]:
    report = PageReport()
    page = context.new_page()

    def route(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:", "about:")) or host == LOCAL_HOST:
            route.continue_()
        else:
            report.external.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda msg: msg.type == "error" and report.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: report.console_errors.append(f"uncaught: {exc}"))
    page.on("request", lambda request: report.pending.add(request))
    page.on("requestfinished", lambda request: report.pending.discard(request))
    page.on("requestfailed", lambda request: report.pending.discard(request))
    page.goto(url, wait_until="load")
    # Playwright's "networkidle" waits for 500 ms of quiet on every page; waiting until nothing is
    # in flight is as strict (a late request is still routed, and recorded until the page closes).
    for _ in range(100):
        if not report.pending:
            break
        page.wait_for_timeout(50)
    return page, report


LOAD_ALL_IMAGES = (
    """async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = "eager"; }
  await Promise.all(imgs.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener("load", done); """
    """img.addEventListener("error", done); })));
  return imgs.map(img => [img.getAttribute("src"), img.naturalWidth]);
}"""
)

TYPESET = """async () => {
  if (!window.MathJax) { return null; }
  if (MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  return {
    math: document.querySelectorAll("span.math, div.math").length,
    rendered: document.querySelectorAll("mjx-container").length,
    errors: document.querySelectorAll("mjx-merror").length,
  };
}"""


def download_links(page) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "a.download, .sphx-glr-download a, .sphx-glr-sidebar-item a, "
        "a[href$='.zip'], a[href$='.ipynb']",
        "els => els.map(a => a.href)",
    )
    return sorted(set(hrefs))


SUMMARY: dict[str, dict] = {}


#: every page in light mode; the indexes and the example pages in dark mode as well
CASES = [(p, "light") for p in PAGES] + [
    (p, "dark") for p in PAGES if p in EXAMPLE_PAGES or p.endswith("index.html")
]


@pytest.mark.parametrize("relpath, scheme", CASES, ids=[f"{s}:{p}" for p, s in CASES])
def test_page_in_browser(browser, server, relpath, scheme):
    page, report = open_page(browser[scheme], urljoin(server, relpath))
    try:
        images = page.evaluate(LOAD_ALL_IMAGES)
        math = page.evaluate(TYPESET)
        downloads = download_links(page)
        answers = {}
        for href in downloads:
            response = page.request.get(href)
            answers[href] = (response.status, len(response.body()))
        theme = page.evaluate("document.documentElement.dataset.theme")
        has_switch = page.locator(".theme-switch-button").count() > 0
        code_blocks = page.locator("div.highlight pre").count()
        copy_buttons = page.locator("button.copybtn").count()
        figure_background = page.evaluate(
            "() => { const img = document.querySelector("
            "'.sphx-glr-single-img, .sphx-glr-multi-img, .sphx-glr-thumbcontainer img');\n"
            "                       return img ? getComputedStyle(img).backgroundColor : null; }"
        )
        shot = SCREENSHOTS / scheme / (relpath.replace("/", "__").removesuffix(".html") + ".png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=scheme == "light")
    finally:
        page.close()
    SUMMARY[f"{scheme}:{relpath}"] = dict(
        images=len(images),
        downloads=len(downloads),
        external=len(report.external),
        console_errors=len(report.console_errors),
        math=math,
    )
    print(
        f"\n{scheme} {relpath}: {len(images)} images, {len(downloads)} downloads, "
        f"math {math}, {len(report.external)} external requests, "
        f"{len(report.console_errors)} console errors, screenshot {shot}"
    )

    assert not report.console_errors, report.console_errors
    assert not report.external, report.external
    if relpath in EXAMPLE_PAGES or relpath.endswith("auto_examples/index.html"):
        assert images, "no figure or thumbnail on the page"
    assert not [src for src, width in images if not width], "images that did not load"
    if math is not None and math["math"]:
        assert math["errors"] == 0
        assert math["rendered"] >= math["math"], math
    for href, (status, size) in answers.items():
        assert status == 200 and size > 0, f"{href}: HTTP {status}, {size} bytes"
    assert has_switch, "no light/dark switch"
    assert theme == scheme, f"the page shows the {theme} theme in {scheme} mode"
    if code_blocks:
        assert copy_buttons >= code_blocks, (
            f"{copy_buttons} copy buttons for {code_blocks} code blocks"
        )
    if relpath in EXAMPLE_PAGES:
        assert math is not None and math["rendered"] > 0, "no typeset math on an example page"
        assert len(downloads) >= 2, "the .py and .ipynb downloads"
        if scheme == "dark":
            assert figure_background == "rgb(255, 255, 255)", figure_background


def test_every_example_page_is_opened():
    assert {Path(p).stem for p in EXAMPLE_PAGES} >= {p.stem for p in EXAMPLES}
    assert any(p.endswith("sg_execution_times.html") for p in PAGES)


def test_browser_checks_catch_a_broken_page(browser, tmp_path):
    """The same checks, on a page made to fail them: they must see every fault."""
    (tmp_path / "bad.html").write_text(
        "<html><body><img src='missing.png'><img src='https://example.org/x.png'>"
        "<script>console.error('boom')</script><script src='https://cdn.example.org/a.js'></script>"
        "</body></html>"
    )
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        page, report = open_page(
            browser["light"], f"http://{LOCAL_HOST}:{httpd.server_address[1]}/bad.html"
        )
        images = page.evaluate(LOAD_ALL_IMAGES)
        page.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "boom" in " ".join(report.console_errors)
    assert sorted(report.external) == ["https://cdn.example.org/a.js", "https://example.org/x.png"]
    assert [width for _, width in images] == [0, 0]
