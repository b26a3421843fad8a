// Course script, loaded on every page (html_js_files in _config.yml). Accessibility fixes for
// markup the toolchain writes, found by the axe audit (tests/test_accessibility.py).
document.addEventListener("DOMContentLoaded", function () {
  // docutils 0.21 writes the bibliography as role="list" holding role="doc-biblioentry" entries;
  // that DPUB-ARIA role is deprecated, so assistive technology (and axe, as a critical
  // aria-required-children violation) sees a list with no list items. Make them plain items.
  document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]').forEach(function (entry) {
    entry.setAttribute("role", "listitem");
  });
});
