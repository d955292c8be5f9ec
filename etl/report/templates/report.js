(function () {
  "use strict";
  var code = document.getElementById("code-filter");
  var search = document.getElementById("order-search");
  var shown = document.getElementById("shown-count");
  if (!code || !search || !shown) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.problem"));
  var files = Array.prototype.slice.call(document.querySelectorAll("article.file"));
  function apply() {
    var wanted = code.value;
    var query = search.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var visible = (!wanted || row.getAttribute("data-code") === wanted) &&
        (!query || row.getAttribute("data-order").toLowerCase().indexOf(query) !== -1);
      row.hidden = !visible;
      if (visible) { count += 1; }
    });
    shown.textContent = String(count);
    files.forEach(function (file) {
      file.hidden = !file.querySelector("tr.problem:not([hidden])");
    });
  }
  code.addEventListener("change", apply);
  search.addEventListener("input", apply);
  document.getElementById("filters").addEventListener("submit", function (event) {
    event.preventDefault();
  });
  apply();
}());
