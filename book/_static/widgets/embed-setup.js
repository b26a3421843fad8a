// The course's own glue for the vendored widget manager: loaded between require.js and
// embed-amd.js on pages with saved widget state (see nb_ipywidgets_js in _config.yml).
(function () {
  // 1. embed-amd.js finds its fonts next to the URL RequireJS gives its modules, which by default
  //    lies under the page's own folder: map the module names to this folder instead.
  var here = document.currentScript.src.replace(/\/[^/]*$/, "");
  var paths = {"@jupyter-widgets/html-manager/dist": here};
  ["base", "base7", "controls", "controls7", "html-manager"].forEach(function (name) {
    paths["@jupyter-widgets/" + name] = here + "/" + name;
  });
  require.config({paths: paths});

  // 2. The manager typesets widget labels through MathJax 2's MathJax.Hub.Queue; the book loads
  //    MathJax 3 (vendored, deferred, so it is ready at DOMContentLoaded, before the manager renders
  //    at window load). Give it the one MathJax 2 call it makes.
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (mj && mj.typesetPromise && !mj.Hub) {
      mj.Hub = {Queue: function (job) {
        var el = job && job[2];
        return mj.startup.promise.then(function () { return mj.typesetPromise(el ? [el] : undefined); });
      }};
    }
  });

  // 3. Accessibility of the rendered static views (the axe audit in tests/test_accessibility.py):
  //    the manager's slider handles carry no accessible name, and images that the saved Output
  //    widget state holds come without alt text. Name each handle after its slider's label and
  //    describe each such image as what it is: the figure for the saved settings.
  var ALT = "Figure drawn by the interactive explorer for its saved settings (a static view: " +
            "the controls redraw it only in a running notebook, for example in Colab).";
  function fix(root) {
    root.querySelectorAll(".widget-subarea [role='slider']:not([aria-label]):not([aria-labelledby])").forEach(function (h) {
      var box = h.closest(".widget-slider, .jupyter-widget-slider, .widget-inline-hbox");
      var label = box && box.querySelector(".widget-label, label");
      var text = label && label.textContent.trim();
      h.setAttribute("aria-label", text || "slider");
    });
    root.querySelectorAll(".widget-subarea img:not([alt])").forEach(function (img) {
      img.setAttribute("alt", ALT);
    });
  }
  new MutationObserver(function () { fix(document); })
    .observe(document.documentElement, {childList: true, subtree: true});
})();
