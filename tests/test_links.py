"""Every local link and anchor in the built website resolves (a crawl of the HTML, no browser).

Sphinx checks cross-references under ``-n``; this catches what it does not see: raw HTML and
Markdown links, theme navigation, links into notebook pages and ``#anchor`` fragments. External
links are not fetched (the tests run offline); they are counted only.
"""

import html.parser
import os
import pathlib
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") in ("preconnect", "dns-prefetch")):
                self.links.append(attrs[key])


def _parse(path: pathlib.Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text(errors="replace"))
    return c


def crawl(root: pathlib.Path) -> tuple[list[str], int, int, int]:
    """``(broken, pages, local links checked, external links skipped)`` for the site under ``root``."""
    pages = sorted(p for p in root.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)
    parsed = {p: _parse(p) for p in pages}
    broken, checked, external = [], 0, 0
    for page, found in parsed.items():
        for link in found.links:
            parts = urllib.parse.urlsplit(link)
            if parts.scheme in ("http", "https", "mailto", "data", "javascript") or link.startswith("//"):
                external += 1
                continue
            checked += 1
            target = page if not parts.path else (page.parent / urllib.parse.unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(root)}: {link} (no file {target})")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if urllib.parse.unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(root)}: {link} (no anchor #{parts.fragment})")
    return broken, len(pages), checked, external


def test_the_crawler_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/page.html#gone">bad anchor</a> '
        '<a href="missing.html">bad file</a> <a href="https://example.org/">external</a> <img src="sub/">')
    (tmp_path / "sub" / "page.html").write_text('<h1 id="here">x</h1><a href="../index.html">up</a><a href="#here">self</a>')
    (tmp_path / "sub" / "index.html").write_text("<p>folder</p>")
    broken, pages, checked, external = crawl(tmp_path)
    assert (pages, checked, external) == (3, 6, 1)
    assert len(broken) == 2 and "#gone" in broken[0] and "missing.html" in broken[1]


@pytest.mark.site
@pytest.mark.parametrize("edition", ["html", "student-html"])
def test_every_local_link_and_anchor_resolves(edition):
    root = ROOT / "_build" / edition
    if not (root / "index.html").exists():
        if os.environ.get("NTCOURSE_REQUIRE_SITE"):
            pytest.fail(f"_build/{edition} is missing: scripts/test builds both editions before the site tests")
        pytest.skip(f"_build/{edition} not built (scripts/build-book, scripts/build-student-book)")
    broken, pages, checked, external = crawl(root)
    print(f"{pages} pages, {checked} local links checked, {external} external links not fetched")
    assert checked > 10 * pages
    assert not broken, f"{len(broken)} broken local links:\n" + "\n".join(broken[:40])
