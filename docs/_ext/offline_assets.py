"""Keep every built page free of assets from other hosts.

sphinx-gallery's execution-times pages carry a raw-HTML block that loads jQuery, DataTables and
Bootstrap from CDNs to make their table sortable.  This extension drops those tags from the page
source as Sphinx reads it (the files on disk are untouched); ``_static/sortable_tables.js``
gives the same table click-to-sort headers without any library.
"""

import re

_REMOTE_TAG = re.compile(
    r"^\s*<(?:link|script)\b[^>]*\b(?:href|src)=\"https?://[^\"]*\"[^>]*>(?:\s*</script>)?\s*$\n?",
    re.MULTILINE,
)
_DATATABLES_INIT = re.compile(
    r"^\s*<script type=\"text/javascript\" class=\"init\">.*?</script>\s*$\n?",
    re.MULTILINE | re.DOTALL,
)


def strip_remote_assets(text):
    """Return ``text`` without the CDN <link>/<script> tags and the DataTables initialiser."""
    text = _REMOTE_TAG.sub("", text)
    return _DATATABLES_INIT.sub("", text)


def _on_source_read(app, docname, source):
    if docname.endswith("sg_execution_times"):
        source[0] = strip_remote_assets(source[0])


def setup(app):
    app.connect("source-read", _on_source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
