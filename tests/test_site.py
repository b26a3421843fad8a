"""The built website as a reader meets it: open pages in headless Chromium with no network.

Run after the book build (scripts/test does). Checks that math was typeset by the vendored
MathJax (no raw TeX left), that every figure loads, and that nothing was fetched from
anywhere but the local server.
"""

import functools
import http.server
import os
import pathlib
import shutil
import tempfile
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
PAGES = sorted(str(p.relative_to(HTML)) for p in HTML.glob("chapters/*/*.html")) + [
    "book/intro.html", "book/notation.html"]

pytestmark = pytest.mark.site

# The one remaining CDN dependency: MyST-NB loads the ipywidgets HTML manager (and RequireJS)
# from a CDN on pages that hold widget state. Offline, the widget stays blank and the static
# figure above it carries the content. Vendoring them is the website issue's job; until then
# they are the only external resources a page may request -- and never for math.
WIDGET_CDN = ("https://cdnjs.cloudflare.com/ajax/libs/require.js/",
              "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@")


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        if os.environ.get("NTCOURSE_REQUIRE_SITE"):
            pytest.fail("_build/html/index.html is missing: the book build must run before the site tests")
        pytest.skip("book not built; run ./scripts/build-book first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("NTCOURSE_REQUIRE_SITE"):
            pytest.fail("chromium/chromedriver missing: run scripts/ensure-chromium")
        pytest.skip("chromium not installed")
    profile = tempfile.mkdtemp(prefix="ntcourse-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
                 # No network: every host name except the local server fails to resolve.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('ok'), (e) => done('error: ' + e));
  } else if (Date.now() - start > 20000) {
    done('MathJax never loaded');
  } else { setTimeout(poll, 100); }
})();
"""


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_math_and_figures_offline(site, browser, page):
    assert (HTML / page).exists(), f"{page} was not built"
    browser.set_script_timeout(30)
    browser.get(f"{site}/{page}")
    assert browser.execute_async_script(WAIT_FOR_MATHJAX) == "ok"

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
    external = [r for r in resources
                if not r.startswith(site) and not r.startswith("data:") and not r.startswith(WIDGET_CDN)]
    assert not external, f"{page}: fetched from outside the site: {external[:5]}"
    mathjax = [r for r in resources if "mathjax" in r.lower()]
    assert mathjax and all(r.startswith(site) for r in mathjax), f"{page}: MathJax not served locally"
