// Catalog page: filter the template cards as the user types or picks a category (no round trip).
(function () {
  "use strict";

  function apply() {
    var text = document.querySelector("[data-catalog-filter]");
    var category = document.querySelector("[data-catalog-category]");
    var wanted = (text ? text.value : "").trim().toLowerCase();
    var group = category ? category.value : "";
    var shown = 0;
    document.querySelectorAll(".template-card").forEach(function (card) {
      var inText = !wanted || (card.dataset.search || "").indexOf(wanted) !== -1;
      var inGroup = !group || (card.dataset.categories || "").split("|").indexOf(group) !== -1;
      card.hidden = !(inText && inGroup);
      if (!card.hidden) shown += 1;
    });
    var none = document.getElementById("no-templates");
    if (none) none.hidden = shown > 0;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var text = document.querySelector("[data-catalog-filter]");
    var category = document.querySelector("[data-catalog-category]");
    if (text) text.addEventListener("input", apply);
    if (category) category.addEventListener("change", apply);
    var form = text && text.form;
    if (form) form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  });
})();
