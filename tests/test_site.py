"""The built website as a reader meets it: open pages in headless Chromium with no network.

Run after the book build (scripts/test does). Checks that math was typeset by the vendored
MathJax (no raw TeX left), that every figure loads, that widgets render from their saved state
through the vendored widget manager, that no page asks anything of the network, that the course's
pages log no console errors, that notebook pages carry launch buttons and that search finds
things. Screenshots of key pages, light and dark, are kept in ``_build/screenshots/``.

The server, the browser and the list of pages come from ``conftest.py`` (``built_page`` runs a
test for every page the build produced, so new chapters need no edit here).
"""

import hashlib
import pathlib
import urllib.parse

import pytest

from conftest import (ROOT, SITE_DIR, WIDGET_VIEWS, console_errors, open_page, requested_urls, site_pages,
                      widget_pages)

pytestmark = pytest.mark.site

MATH_PAGES = [p for p in site_pages() if p.startswith("chapters/")] + [
    p for p in ("book/intro.html", "book/notation.html") if p in site_pages()]
SCREENSHOTS = ROOT / "_build" / "screenshots"


def _local(url: str, site: str) -> bool:
    """Served by the test's own server, or no network at all (data:, blob:, the browser's own chrome://)."""
    return url.startswith(site + "/") or urllib.parse.urlsplit(url).scheme not in ("http", "https", "ws", "wss", "ftp")


@pytest.mark.parametrize("page", MATH_PAGES or ["(book not built)"])
def test_page_renders_math_and_figures_offline(site, browser, page):
    assert (SITE_DIR / page).exists(), f"{page} was not built"
    assert open_page(browser, f"{site}/{page}", theme=None) == "ok", f"{page}: MathJax did not typeset the page"

    text = browser.execute_script("return document.querySelector('main').innerText")
    for raw in ("$$", "\\[", "\\(", "\\begin{"):
        assert raw not in text, f"{page}: raw TeX {raw!r} left in the rendered text"
    n_math = browser.execute_script("return document.querySelectorAll('mjx-container').length")
    n_errors = browser.execute_script("return document.querySelectorAll('mjx-merror, [data-mjx-error]').length")
    assert n_errors == 0, f"{page}: {n_errors} MathJax errors (undefined macro or bad TeX)"
    if page != "book/intro.html":
        assert n_math > 5, f"{page}: only {n_math} typeset formulas"

    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img')).map(i => [i.src, i.complete, i.naturalWidth, i.alt])")
    for src, complete, width, alt in images:
        assert complete and width > 0, f"{page}: image {src} did not load"
        if "chapters/" in page and "_images" in src:
            assert alt and len(alt) > 20, f"{page}: figure {src} has no alt text"
    if page.endswith("lab.html"):
        assert len(images) >= 4, f"{page}: expected the lab's figures, found {len(images)} images"

    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    external = [r for r in resources if not _local(r, site)]
    assert not external, f"{page}: fetched from outside the site: {external[:5]}"
    mathjax = [r for r in resources if "mathjax" in r.lower()]
    assert mathjax and all(r.startswith(site) for r in mathjax), f"{page}: MathJax not served locally"


def test_every_page_loads_offline_without_console_errors(site, browser, built_page):
    """No request leaves the machine (DevTools network log: failed requests count too), and the
    console holds no error. Chromium runs with every host name but 127.0.0.1 unresolvable."""
    browser.get_log("performance"), browser.get_log("browser")  # drop what earlier pages left
    open_page(browser, f"{site}/{built_page}")
    urls = requested_urls(browser)
    assert f"{site}/{built_page}" in urls, f"{built_page}: the page itself was not requested?"
    external = sorted({u for u in urls if not _local(u, site)})
    assert not external, f"{built_page}: requested from outside the site: {external[:5]}"
    errors = console_errors(browser)
    assert not errors, f"{built_page}: console errors: {errors[:5]}"
    text = browser.execute_script("return document.querySelector('main')?.innerText || ''")
    assert len(text.strip()) > 20, f"{built_page}: the page's main content is empty"


def test_the_widget_manager_is_vendored_and_matches_its_checksums():
    widgets = ROOT / "book" / "_static" / "widgets"
    sums = (widgets / "SHA256SUMS").read_text().split("\n")
    checked = 0
    for line in filter(None, sums):
        digest, name = line.split()
        assert hashlib.sha256((widgets / name).read_bytes()).hexdigest() == digest, f"{name} was altered"
        checked += 1
    assert checked >= 2
    assert "RequireJS 2.3.8" in (widgets / "require.js").read_text()[:400]
    # Only pages with widget state load the manager: the other pages stay light.
    pages = site_pages()
    if pages:
        light = [p for p in pages if p not in widget_pages()]
        for page in light:
            assert "widgets/embed-amd.js" not in (SITE_DIR / page).read_text(), f"{page} loads the widget manager"


def test_widget_pages_render_saved_state_with_no_network(site, browser, widget_page):
    """A page with saved widget state renders it statically (no kernel) from the local widget
    manager: every widget view gets a non-empty DOM, and nothing is fetched from a CDN."""
    if widget_page == "(no widget page)":
        pytest.skip("no built page holds widget state")
    browser.get_log("performance"), browser.get_log("browser")
    html = (SITE_DIR / widget_page).read_text()
    assert "cdn.jsdelivr.net" not in html and "cdnjs.cloudflare.com" not in html, f"{widget_page}: CDN script tag"
    open_page(browser, f"{site}/{widget_page}")
    state = browser.execute_async_script(WIDGET_VIEWS)
    assert state["requirejs"], f"{widget_page}: RequireJS did not load"
    assert state["views"] >= 1, f"{widget_page}: no widget view in the page"
    for i, r in enumerate(state["rendered"]):
        assert r is not None, f"{widget_page}: widget view {i} was not rendered (blank)"
        height, n_nodes, _ = r
        assert height > 20 and n_nodes > 5, f"{widget_page}: widget view {i} rendered empty ({r})"
    assert state["sliders"] >= 1, f"{widget_page}: the saved sliders were not drawn"
    urls = requested_urls(browser)
    assert any("_static/widgets/embed-amd.js" in u for u in urls), f"{widget_page}: local widget manager not loaded"
    external = sorted({u for u in urls if not _local(u, site)})
    assert not external, f"{widget_page}: requested from outside the site: {external}"
    errors = console_errors(browser)
    assert not errors, f"{widget_page}: console errors: {errors[:5]}"


@pytest.mark.parametrize("page", [p for p in site_pages() if p.startswith("chapters/")
                                  and (ROOT / p).with_suffix(".ipynb").exists()] or ["(book not built)"])
def test_notebook_pages_have_launch_buttons(site, browser, page):
    open_page(browser, f"{site}/{page}")
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('a')).map(a => a.href)"
        ".filter(h => h.includes('colab.research.google.com') || h.includes('mybinder.org'))")
    notebook = page[:-len(".html")] + ".ipynb"
    colab = [h for h in links if "colab.research.google.com" in h]
    assert colab, f"{page}: no Colab launch button"
    assert all(urllib.parse.urlsplit(h).path.endswith(notebook) for h in colab), colab
    assert any("mybinder.org" in h for h in links), f"{page}: no Binder launch button"


def test_search_page_finds_a_term(site, browser):
    open_page(browser, f"{site}/search.html?q=equipartition")
    found = browser.execute_async_script("""
      const done = arguments[arguments.length - 1];
      const start = Date.now();
      (function poll() {
        const hits = document.querySelectorAll('#search-results li, ul.search li');
        if (hits.length || Date.now() - start > 20000) { done(Array.from(hits).map(h => h.innerText.slice(0, 80))); }
        else { setTimeout(poll, 200); }
      })();""")
    assert found, "the search page found nothing for 'equipartition'"


def key_pages() -> dict[str, str]:
    """Four pages that show the site: the introduction, a theory page, a lab with figures, a widget."""
    pages = site_pages()
    theory = [p for p in pages if p.startswith("chapters/") and p.endswith("/theory.html")]
    labs = [p for p in pages if p.startswith("chapters/") and p.endswith("/lab.html")]
    widget = widget_pages()
    chosen = {"intro": "book/intro.html"}
    if theory:
        chosen["theory"] = theory[0]
    figure_labs = [p for p in labs if p not in widget and "_images/" in (SITE_DIR / p).read_text()]
    if figure_labs or labs:
        chosen["lab"] = (figure_labs or labs)[0]
    if widget:
        chosen["widget"] = widget[0]
    return chosen


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshots_of_key_pages(site, browser, theme):
    """Screenshots (1280x900 viewport, scrolled to the figure or widget), kept as test artefacts in _build/screenshots/ (CI can upload them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = key_pages()
    assert {"intro", "theory", "lab"} <= set(shots), shots
    for name, page in shots.items():
        open_page(browser, f"{site}/{page}", theme=theme)
        if name == "widget":          # open_page waited until the widget views were drawn
            browser.execute_script(
                "document.querySelector('script[type=\"application/vnd.jupyter.widget-view+json\"]')"
                ".parentElement.scrollIntoView({block: 'center'})")
        elif name == "lab":
            browser.execute_script("document.querySelector('main img[src*=\"_images\"]')?.scrollIntoView({block: 'center'})")
        out = SCREENSHOTS / f"{name}-{theme}.png"
        assert browser.save_screenshot(str(out)), out
        assert out.stat().st_size > 20_000, f"{out}: suspiciously small (blank page?)"
