"""Accessibility of the built website and of the course's plots.

* An axe-core audit (the JavaScript engine Deque publishes; the copy shipped in the PyPI package
  ``selenium-axe-python``, pinned in requirements.txt) of every built page in headless Chromium:
  no violation of impact "serious" or "critical". Counts by impact are written to
  ``_build/accessibility.json`` and printed.
* Every image in a page's content has non-empty alt text (read from the HTML, no browser).
* Dark mode (pydata-sphinx-theme's ``data-theme="dark"``): every page passes axe's colour-contrast
  rule again, and figures keep a light background (book/_static/course.css).
* The plot palette (``ntcourse.PALETTE`` / ``CYCLE``) stays distinguishable under simulated
  protanopia, deuteranopia and tritanopia (Machado, Oliveira & Fernandes 2009 matrices at
  severity 1, applied in linear RGB; distances in CIEDE2000).
"""

import fcntl
import html.parser
import importlib.resources
import itertools
import json
import os

import numpy as np
import pytest

import ntcourse as nt
from conftest import ROOT, SITE_DIR, open_page, site_pages

AUDIT_REPORT = ROOT / "_build" / "accessibility.json"
BLOCKING = ("serious", "critical")


# ---------------------------------------------------------------------------------------------
# axe-core in the browser
# ---------------------------------------------------------------------------------------------

def axe_source() -> str:
    """axe.min.js from the pinned selenium-axe-python package (no network, no Node)."""
    pkg = pytest.importorskip("selenium_axe_python", reason="pip install -r requirements.txt (selenium-axe-python)")
    return (importlib.resources.files(pkg) / "axe-core" / "axe.min.js").read_text()


def run_axe(driver, rules: list[str] | None = None) -> dict:
    """Inject axe into the current page and return its violations (WCAG 2.x A and AA rules)."""
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(axe_source())
    options = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": rules}
    else:
        options["runOnly"] = {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}
    # Typeset math is left out: MathJax draws glyphs in its own elements (tens of thousands on a theory
    # page, which made the audit take minutes) and gives screen readers a hidden MathML copy; the
    # formulas' colour is the surrounding text's, which is audited. The audits load pages with
    # MathJax blocked (open_page(math=False)); the exclusion covers a page audited after typesetting.
    # Highlighted code is sampled: Pygments wraps every token in a span whose colour comes from its
    # class alone (6,500 spans on a lab page, each a contrast check), so one span of each class and
    # code block context is audited and the rest are left out.
    return driver.execute_async_script("""
      const done = arguments[arguments.length - 1];
      const seen = new Set();
      for (const span of document.querySelectorAll('.highlight pre span')) {
        const key = span.className + '|' + getComputedStyle(span.closest('.highlight')).backgroundColor;
        if (!seen.has(key)) { seen.add(key); span.setAttribute('data-axe-sample', ''); }
      }
      const exclude = [['mjx-container'], ['.highlight pre span:not([data-axe-sample])']];
      axe.run({exclude: exclude}, arguments[0]).then(r => done({version: axe.version, violations: r.violations.map(v => ({
          id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: (n.failureSummary || '').slice(0, 300)}))}))}),
        e => done({error: String(e)}));""", options)


def _describe(violations) -> str:
    return "\n".join(f"  [{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['target']}: "
                     f"{v['nodes'][0]['summary'][:160]})" for v in violations)


_audit: dict[str, dict] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_audit_report():
    """Merge this process's audits into _build/accessibility.json. Under pytest-xdist each worker
    audits some of the pages; the workers of one run share PYTEST_XDIST_TESTRUNUID, so a report
    from an earlier run is replaced, not merged into."""
    yield
    if not _audit:
        return
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"pid-{os.getpid()}")
    AUDIT_REPORT.parent.mkdir(parents=True, exist_ok=True)
    with open(AUDIT_REPORT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = {}
        if AUDIT_REPORT.exists():
            try:
                earlier = json.loads(AUDIT_REPORT.read_text())
                results = earlier["results"] if earlier.get("run") == run else {}
            except (ValueError, KeyError):
                results = {}          # a corrupt report is rewritten
        results.update(_audit)
        counts: dict[str, int] = {}
        for result in results.values():
            for v in result["violations"]:
                counts[v["impact"]] = counts.get(v["impact"], 0) + len(v["nodes"])
        tmp = AUDIT_REPORT.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"run": run, "pages": len(results), "nodes_by_impact": counts,
                                   "results": results}, indent=1))
        os.replace(tmp, AUDIT_REPORT)
    print(f"\naxe audit: {len(results)} pages so far in this run, violating nodes by impact {counts} -> {AUDIT_REPORT}")


@pytest.mark.site
def test_axe_finds_no_serious_or_critical_violation(site, browser, built_page):
    open_page(browser, f"{site}/{built_page}", math=False)
    result = run_axe(browser)
    assert "error" not in result, f"{built_page}: axe failed: {result.get('error')}"
    _audit[built_page] = result
    blocking = [v for v in result["violations"] if v["impact"] in BLOCKING]
    assert not blocking, f"{built_page}: axe {result['version']} found\n{_describe(blocking)}"


@pytest.mark.site
def test_the_audit_catches_a_known_violation(site, browser):
    """The audit is live: an image without alt text and grey-on-grey text are reported."""
    open_page(browser, f"{site}/book/intro.html")
    browser.execute_script("""
      const main = document.querySelector('main');
      main.insertAdjacentHTML('afterbegin',
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="40" height="40">' +
        '<p style="color:#bbb;background:#ccc">low contrast text for the test</p>');""")
    ids = {v["id"]: v["impact"] for v in run_axe(browser, ["image-alt", "color-contrast"])["violations"]}
    assert ids.get("image-alt") == "critical" and ids.get("color-contrast") == "serious", ids


# ---------------------------------------------------------------------------------------------
# Alt text, from the HTML
# ---------------------------------------------------------------------------------------------

class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.depth = 0          # inside <main>
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "main":
            self.depth += 1
        elif tag == "img" and self.depth:
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag == "main":
            self.depth -= 1


@pytest.mark.site
def test_every_content_image_has_alt_text():
    pages = site_pages()
    if not pages:
        pytest.skip("book not built")
    missing, n_images = [], 0
    for page in pages:
        parser = _Images()
        parser.feed((SITE_DIR / page).read_text(errors="replace"))
        for img in parser.images:
            n_images += 1
            if not (img.get("alt") or "").strip():
                missing.append(f"{page}: {img.get('src')}")
    print(f"{n_images} images in {len(pages)} pages")
    assert n_images > 0
    assert not missing, "images without alt text (set mystnb.image.alt on the figure cell):\n" + "\n".join(missing)


# ---------------------------------------------------------------------------------------------
# Dark mode
# ---------------------------------------------------------------------------------------------

@pytest.mark.site
def test_dark_mode_keeps_contrast_and_figures_visible(site, browser, built_page):
    """Every page in the theme's dark mode: axe's colour-contrast rule, and figures (drawn for a
    white page) keep a white background and are not dimmed (book/_static/course.css)."""
    page = built_page
    open_page(browser, f"{site}/{page}", theme="dark", math=False)
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert _luminance(background) < 0.1, f"{page}: dark mode did not darken the page ({background})"
    result = run_axe(browser, ["color-contrast"])
    blocking = [v for v in result["violations"] if v["impact"] in BLOCKING]
    assert not blocking, f"{page} in dark mode:\n{_describe(blocking)}"
    figures = browser.execute_script("""
      return Array.from(document.querySelectorAll('main img[src*="_images"]')).map(i => {
        const s = getComputedStyle(i); return [i.src, s.backgroundColor, s.filter, i.getBoundingClientRect().width]; });""")
    for src, bg, filt, width in figures:
        assert width > 50, f"{page}: figure {src} collapsed in dark mode"
        assert _luminance(bg) > 0.9, f"{page}: figure {src} has no light background in dark mode ({bg})"
        assert filt in ("none", ""), f"{page}: figure {src} is dimmed in dark mode ({filt})"


def _luminance(css_colour: str) -> float:
    """Relative luminance (WCAG) of an rgb()/rgba() colour; a transparent colour counts as its alpha."""
    parts = [float(x) for x in css_colour[css_colour.index("(") + 1:-1].replace("/", ",").replace(" ", ",").split(",") if x]
    rgb, alpha = np.array(parts[:3]) / 255, (parts[3] if len(parts) > 3 else 1.0)
    lum = float(np.array([0.2126, 0.7152, 0.0722]) @ _linear(rgb))
    return lum if alpha > 0.5 else -1.0


# ---------------------------------------------------------------------------------------------
# Colour-blind check of the plot palette (no browser)
# ---------------------------------------------------------------------------------------------

# Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of color
# vision deficiency", IEEE TVCG 15(6): the matrices for severity 1.0, on linear RGB.
MACHADO_2009 = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}
# Minimum CIEDE2000 distance between any two palette colours under each simulation. A difference of
# about 2 is just noticeable side by side; 10 is a plainly different colour for thin plot lines
# and legend swatches. The Okabe-Ito palette's closest pair under these simulations is at about 10.9
# (orange/purple under tritanopia), so the check has little slack: it is meant to stop a palette
# change that makes two lines coincide, which a red/green pair does (4.6 under deuteranopia, see the control test).
MIN_DELTA_E00 = 10.0


def _linear(rgb):
    rgb = np.asarray(rgb, dtype=float)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _hex(colour: str) -> np.ndarray:
    h = colour.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)]) / 255


def _lab(linear_rgb) -> np.ndarray:
    """CIELAB (D65) of a linear sRGB colour."""
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
    xyz = m @ linear_rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e2000(lab1, lab2) -> float:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005 formulation; kL = kC = kH = 1)."""
    (L1, a1, b1), (L2, a2, b2) = lab1, lab2
    cbar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(cbar**7 / (cbar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    dlp, dcp = L2 - L1, c2p - c1p
    if c1p * c2p == 0:
        dhp = 0.0
    else:
        dhp = h2p - h1p
        dhp = dhp - 360 if dhp > 180 else dhp + 360 if dhp < -180 else dhp
    dHp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dhp) / 2)
    lbar, cbarp = (L1 + L2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbar = (h1p + h2p) / 2
    else:
        hbar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    dtheta = 30 * np.exp(-(((hbar - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cbarp**7 / (cbarp**7 + 25.0**7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    rt = -np.sin(np.radians(2 * dtheta)) * rc
    return float(np.sqrt((dlp / sl) ** 2 + (dcp / sc) ** 2 + (dHp / sh) ** 2 + rt * (dcp / sc) * (dHp / sh)))


def simulated_lab(colour: str, deficiency: str | None) -> np.ndarray:
    rgb = _linear(_hex(colour))
    if deficiency:
        rgb = np.clip(np.array(MACHADO_2009[deficiency]) @ rgb, 0, 1)
    return _lab(rgb)


def closest_pair(colours, deficiency):
    labs = [simulated_lab(c, deficiency) for c in colours]
    return min((delta_e2000(labs[i], labs[j]), colours[i], colours[j])
               for i, j in itertools.combinations(range(len(colours)), 2))


def test_ciede2000_matches_the_published_test_data():
    # Pairs 1, 2 and 17 of Sharma, Wu & Dalal (2005), Table 1.
    assert delta_e2000((50, 2.6772, -79.7751), (50, 0, -82.7485)) == pytest.approx(2.0425, abs=1e-4)
    assert delta_e2000((50, 3.1571, -77.2803), (50, 0, -82.7485)) == pytest.approx(2.8615, abs=1e-4)
    assert delta_e2000((50, 2.5, 0), (73, 25, -18)) == pytest.approx(27.1492, abs=1e-4)


def test_the_simulation_merges_red_and_green():
    # Control: matplotlib's default red and green ("tab:red", "tab:green") are far apart for normal
    # vision and fall below the threshold under deuteranopia, the commonest form (measured 4.6);
    # Okabe-Ito's blue and orange stay far apart under all three simulations.
    red, green = "#d62728", "#2ca02c"
    assert closest_pair([red, green], None)[0] > 40
    assert closest_pair([red, green], "deuteranopia")[0] < 5 < MIN_DELTA_E00
    for deficiency in MACHADO_2009:
        assert closest_pair([nt.PALETTE["blue"], nt.PALETTE["orange"]], deficiency)[0] > 40, deficiency


@pytest.mark.parametrize("deficiency", [None, "protanopia", "deuteranopia", "tritanopia"])
def test_plot_palette_is_distinguishable_under_colour_blindness(deficiency):
    assert set(nt.CYCLE) == set(nt.PALETTE.values())
    distance, a, b = closest_pair(list(nt.CYCLE), deficiency)
    print(f"{deficiency or 'normal vision'}: closest pair {a}/{b} at CIEDE2000 {distance:.1f}")
    assert distance >= MIN_DELTA_E00, (
        f"{deficiency or 'normal vision'}: palette colours {a} and {b} are only {distance:.1f} apart (CIEDE2000)")
