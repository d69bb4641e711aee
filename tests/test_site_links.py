"""Every deepinv/torch name of the built example pages links to its page in the official docs.

Counted page by page in _build/html (``make html`` first; a missing build fails):

* the names sphinx-gallery identified in each example's code (``*.codeobj.json``, written by the
  build next to the generated pages) that belong to deepinv or torch (``dinv.physics.Blur``, but
  also ``physics.update`` on a Blur instance, ``x`` for a tensor);
* every dotted ``torch.``/``dinv.``/``deepinv.`` name written in the code blocks, outside
  comments, strings and import statements;
* the roles (``:class:``, ``:func:``...) of the prose.

Each must sit inside a link to deepinv.org or docs.pytorch.org, and each link's target must
import from the installed packages.  ``-s`` prints the counts.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from bs4 import BeautifulSoup, NavigableString

from conftest import EXAMPLES, ROOT, example_html, soup

GALLERY_SRC = ROOT / "docs" / "auto_examples"
PACKAGES = ("deepinv", "torch")
API_HOSTS = {"deepinv.org": "deepinv", "docs.pytorch.org": "torch"}
DOTTED = re.compile(r"\b(?:torch|dinv|deepinv)(?:\.[A-Za-z_]\w*)+")
SKIPPED_TOKENS = re.compile(r"^(c|s|nn)")  # pygments: comments, strings, imported module names


def is_api_link(a) -> bool:
    return a.name == "a" and urlparse(a.get("href", "")).netloc in API_HOSTS


def is_helper_link(a) -> bool:
    """A link to the documentation of a shared helper (docs/helpers.rst) on this site."""
    href = urlparse(a.get("href", ""))
    return (
        not href.netloc
        and href.path.endswith("helpers.html")
        and href.fragment.startswith("calibration_helpers.")
    )


def target_name(url: str) -> str:
    """The dotted name a documentation URL is about (its anchor, else its page name)."""
    parsed = urlparse(url)
    if parsed.fragment:
        return parsed.fragment
    return Path(parsed.path).name.removesuffix(".html")


def importable(name: str) -> bool:
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return False
    obj = importlib.import_module(parts[0])
    for part in parts[1:]:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(f"{obj.__name__}.{part}")
            except (ImportError, AttributeError):
                return False
    return True


def code_leaves(pre):
    """``(text, link, skipped)`` for each piece of text in a highlighted code block."""
    for node in pre.descendants:
        if not isinstance(node, NavigableString):
            continue
        link = next((p for p in node.parents if p is pre or p.name == "a"), None)
        link = link if link is not pre else None
        span = node.parent if node.parent.name == "span" else None
        classes = " ".join(span.get("class", [])) if span is not None else ""
        yield str(node), link, bool(SKIPPED_TOKENS.match(classes))


def dotted_names_in_code(page: BeautifulSoup):
    """Every dotted deepinv/torch name in the code, and whether its first character is linked."""
    found = []
    for pre in page.select(
        "div.highlight-Python pre, div.highlight-python pre, div.highlight-default pre"
    ):
        text, linked, skipped = "", [], []
        for piece, link, skip in code_leaves(pre):
            text += piece
            linked += [link is not None and is_api_link(link)] * len(piece)
            skipped += [skip] * len(piece)
        for match in DOTTED.finditer(text):
            if not skipped[match.start()]:
                found.append((match.group(), linked[match.start()]))
    return found


def code_link_texts(page: BeautifulSoup) -> set[str]:
    return {
        a.get_text()
        for a in page.select(
            "div.highlight-Python a, div.highlight-python a, div.highlight-default a"
        )
        if is_api_link(a)
    }


def identified_names(stem: str) -> list[str]:
    """Names sphinx-gallery identified in the code of ``stem`` that resolve into deepinv/torch."""
    codeobj = list(GALLERY_SRC.rglob(f"{stem}.codeobj.json"))
    assert codeobj, f"{stem}.codeobj.json missing: build the site first"
    names = []
    for name, candidates in json.loads(codeobj[0].read_text()).items():
        if all(c["is_explicit"] for c in candidates):
            continue  # a role in the prose, checked with the roles
        if any(c["module"].split(".")[0] in PACKAGES for c in candidates):
            names.append(name)
    return names


def role_links(page: BeautifulSoup):
    """``(target, linked)`` for every py role of the prose."""
    roles = []
    for code in page.select("code.xref.py"):
        parent = code.find_parent("a")
        linked = parent is not None and (is_api_link(parent) or is_helper_link(parent))
        roles.append((code.get_text(), linked))
    return roles


def link_targets(page: BeautifulSoup) -> set[str]:
    return {target_name(a["href"]) for a in page.find_all("a", href=True) if is_api_link(a)}


COUNTS = {}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_deepinv_and_torch_name_is_linked(path):
    page = soup(example_html(path.stem))
    identified = identified_names(path.stem)
    linked_texts = code_link_texts(page)
    unlinked_ids = [
        n for n in identified if not any(t == n or t.startswith(n + ".") for t in linked_texts)
    ]
    dotted = dotted_names_in_code(page)
    unlinked_dotted = sorted({name for name, ok in dotted if not ok})
    roles = role_links(page)
    unlinked_roles = sorted({name for name, ok in roles if not ok})
    targets = link_targets(page)
    not_importable = sorted(t for t in targets if not importable(t))
    n_links = sum(1 for a in page.find_all("a", href=True) if is_api_link(a))
    COUNTS[path.stem] = (len(identified), len(dotted), len(roles), n_links, len(targets))
    print(
        f"\n{path.stem}: {len(identified)} identified names, {len(dotted)} dotted names in code, "
        f"{len(roles)} roles; {n_links} links to {len(targets)} distinct objects, all importable"
    )
    assert not unlinked_ids, f"identified but not linked: {unlinked_ids}"
    assert not unlinked_dotted, f"dotted names not linked: {unlinked_dotted}"
    assert not unlinked_roles, f"roles not linked: {unlinked_roles}"
    assert not not_importable, f"link targets that do not import: {not_importable}"
    assert identified and dotted and n_links, "a page without any deepinv/torch name?"


def test_link_urls_follow_the_official_patterns():
    """deepinv -> https://deepinv.org/api/stubs/<name>.html, torch -> .../generated/<name>.html
    (or the few torch pages of their own: tensors, size, tensor_attributes)."""
    bad = []
    for path in EXAMPLES:
        for a in soup(example_html(path.stem)).find_all("a", href=True):
            url = urlparse(a["href"])
            if url.netloc == "deepinv.org" and not re.fullmatch(
                r"/api/stubs/deepinv(\.\w+)+\.html", url.path
            ):
                bad.append(a["href"])
            if url.netloc == "docs.pytorch.org" and not re.fullmatch(
                r"/docs/stable/(generated/torch(\.\w+)+|tensors|size|tensor_attributes)\.html",
                url.path,
            ):
                bad.append(a["href"])
    assert not bad, sorted(set(bad))


def test_link_checker_sees_an_unlinked_name():
    html = """<div class="highlight-Python"><pre>
    <a href="https://deepinv.org/api/stubs/deepinv.physics.Blur.html">dinv.physics.Blur</a>(k)
    <span class="n">torch</span><span class="o">.</span><span class="n">zeros</span>(3)
    <span class="c1"># torch.ones in a comment</span> <span class="s2">"torch.ones"</span>
    </pre></div>"""
    found = dotted_names_in_code(BeautifulSoup(html, "html.parser"))
    assert found == [("dinv.physics.Blur", True), ("torch.zeros", False)]
    assert importable("torch.optim.Adam") and importable("deepinv.physics.Blur")
    assert not importable("deepinv.physics.NoSuchThing")
    assert (
        target_name("https://docs.pytorch.org/docs/stable/tensors.html#torch.Tensor")
        == "torch.Tensor"
    )
