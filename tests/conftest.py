"""Shared fixtures. Tests always run at quick scale on the CPU, in float64 where exactness matters.

The website tests (markers ``site``) share one local HTTP server and one headless Chromium for the
whole session: ``site`` (the server's base URL), ``browser`` (a Selenium driver on Debian's
``chromium``) and the ``built_page`` parameter, which runs a test once for every page of the built
book, whatever chapters exist. ``NTCOURSE_SITE_DIR`` points the tests at another build (default
``_build/html``).
"""

import functools
import http.server
import json
import os
import pathlib
import shutil
import tempfile
import threading

import pytest
import torch

os.environ.setdefault("NTCOURSE_SCALE", "quick")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SITE_DIR = pathlib.Path(os.environ.get("NTCOURSE_SITE_DIR", ROOT / "_build" / "html")).resolve()


@pytest.fixture
def gen():
    g = torch.Generator()
    g.manual_seed(1234)
    return g


@pytest.fixture
def clean_env(monkeypatch):
    """Remove the NTCOURSE_* variables so a test sees the defaults."""
    for name in ("NTCOURSE_SCALE", "NTCOURSE_SEED", "NTCOURSE_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ---------------------------------------------------------------------------------------------
# The built website
# ---------------------------------------------------------------------------------------------

def site_pages(root: pathlib.Path = SITE_DIR) -> list[str]:
    """Every page of a built book, relative to its root: theme assets and redirects left out."""
    if not (root / "index.html").exists():
        return []
    pages = []
    for p in sorted(root.rglob("*.html")):
        rel = p.relative_to(root)
        if rel.parts[0] in ("_static", "_sources", "_images") or rel.parts[0].startswith("."):
            continue
        if p.stat().st_size < 1000 and "http-equiv=\"Refresh\"" in p.read_text(errors="replace"):
            continue  # index.html: a one-line redirect to the root page
        pages.append(rel.as_posix())
    return pages


def widget_pages(root: pathlib.Path = SITE_DIR) -> list[str]:
    """Pages that hold saved ipywidgets state (MyST-NB writes it into a script tag)."""
    return [p for p in site_pages(root)
            if "application/vnd.jupyter.widget-state+json" in (root / p).read_text(errors="replace")]


def pytest_generate_tests(metafunc):
    # Parametrised at collection time from the pages actually built, so new chapters are picked
    # up with no list to edit. With no build, one placeholder lets the `site` fixture skip or fail.
    if "built_page" in metafunc.fixturenames:
        metafunc.parametrize("built_page", site_pages() or ["(book not built)"])
    if "widget_page" in metafunc.fixturenames:
        metafunc.parametrize("widget_page", widget_pages() or ["(no widget page)"])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site():
    """Base URL of a local server for the built book (skips, or fails under NTCOURSE_REQUIRE_SITE)."""
    if not (SITE_DIR / "index.html").exists():
        if os.environ.get("NTCOURSE_REQUIRE_SITE"):
            pytest.fail(f"{SITE_DIR}/index.html is missing: the book build must run before the site tests")
        pytest.skip("book not built; run ./scripts/build-book first")
    handler = functools.partial(_QuietHandler, directory=str(SITE_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars",
    # No network: every host name except the local server fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Selenium, logging console messages and every network request."""
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
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(300)            # an axe audit of a long page on a busy 2-core machine
    driver.command_executor.client_config.timeout = 400   # Selenium's own HTTP wait (default 120 s)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked for since the last call (DevTools log: failed requests included)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


# Console errors that come from the book toolchain, not from the course's pages or scripts, each
# with its cause. Anything else at level SEVERE fails a test.
KNOWN_TOOLCHAIN_ERRORS = {
    # sphinx-thebe 0.3.1 (pulled in by Jupyter Book 1) writes its inline `const THEBE_JS_URL = ...`
    # script twice into every page; the second copy throws, harmlessly (the course does not use
    # Thebe's live code cells: its launch buttons go to Colab and Binder).
    "Identifier 'THEBE_JS_URL' has already been declared",
    # pydata-sphinx-theme 0.17.1 under sphinx-book-theme 1.3.0: on a reader's first visit (nothing
    # stored yet) the page template sets an empty mode and the theme's script logs this, then
    # falls back to following the system's light/dark setting, which is what we want.
    "Got invalid theme mode: . Resetting to auto.",
    # The browser asks for /favicon.ico by itself; the book sets no favicon (no page links it).
    "/favicon.ico - Failed to load resource",
}


def console_errors(driver) -> list[str]:
    """Console messages at level SEVERE since the last call, less the known toolchain ones."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"
            and not any(known in e["message"] for known in KNOWN_TOOLCHAIN_ERRORS)]


# MathJax's script and fonts: blocked while a page is loaded for an accessibility audit (open_page(math=False)).
MATHJAX_URLS = ["*mathjax*", "*MathJax*"]

# Polls until every saved widget view on the page is drawn (or 30 s pass), then returns what was drawn.
WIDGET_VIEWS = """
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  const views = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
  const rendered = views.map(s => {
    const host = s.parentElement;
    const w = host.querySelector('.jupyter-widgets, .widget-container, .lm-Widget');
    return w ? [w.getBoundingClientRect().height, w.querySelectorAll('*').length, host.innerText.length] : null;
  });
  if (rendered.every(r => r && r[0] > 0) || Date.now() - start > 30000) {
    done({views: views.length, rendered: rendered,
          sliders: document.querySelectorAll('.widget-slider, .jupyter-widget-slider, .widget-hslider').length,
          requirejs: typeof window.require === 'function' && typeof window.define === 'function'});
  } else { setTimeout(poll, 100); }
})();
"""


def open_page(driver, url: str, theme: str | None = "light", math: bool = True) -> str:
    """Load ``url``, wait until the document, MathJax (where the page has it) and any saved widget
    views are drawn. Returns MathJax's state: "ok" (typeset), "error", "timeout" (never loaded in
    20 s) or "no math" (the page loads no MathJax, or ``math=False``).

    ``theme``: "light" (the default) or "dark" sets pydata-sphinx-theme's stored mode before the
    page loads, as the theme's switcher does (localStorage ``mode``), so the page starts in that
    mode whatever an earlier test chose (the browser is shared); None leaves it as it is.

    ``math=False`` loads the page with MathJax blocked, for the axe audits: typeset math is left out
    of the audit anyway (see tests/test_accessibility.py), and MathJax's glyph elements, about 90 %
    of a theory page's 48,000 elements, made each audit of such a page take 15-25 s instead of 5.
    The formulas then stay as TeX source in spans of the surrounding text's colour. Console messages
    and network entries of that load (the blocked requests) are dropped.
    """
    if not math:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": MATHJAX_URLS})
    try:
        if theme:
            driver.get(url.split("#")[0])
            driver.execute_script("localStorage.setItem('mode', arguments[0]); localStorage.setItem('theme', arguments[0]);", theme)
        driver.get(url)
        mathjax = driver.execute_async_script("""
          const done = arguments[arguments.length - 1], waitForMath = arguments[0];
          const start = Date.now();
          (function poll() {
            if (document.readyState !== 'complete') { return setTimeout(poll, 50); }
            if (!waitForMath || !document.querySelector('script[src*="mathjax"]')) { return done('no math'); }
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
              return MathJax.startup.promise.then(() => done('ok'), () => done('error'));
            }
            if (Date.now() - start > 20000) { return done('timeout'); }
            setTimeout(poll, 100);
          })();""", math)
        driver.execute_async_script(WIDGET_VIEWS)
        if theme:
            actual = driver.execute_script("return document.documentElement.dataset.theme")
            assert actual == theme, f"{url}: asked for {theme} mode, page is in {actual!r}"
        return mathjax
    finally:
        if not math:
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
            driver.get_log("browser"), driver.get_log("performance")


@pytest.fixture
def one_thread():
    """One torch thread, as nt.setup() uses at quick scale: tiny tensors on a busy 2-core machine stall with two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
