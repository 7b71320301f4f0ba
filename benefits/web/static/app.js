// Progressive enhancement only: every page works without this file.
// Asks for confirmation before forms marked data-confirm are sent.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var text = form.getAttribute("data-confirm");
  if (text && !window.confirm(text)) {
    event.preventDefault();
  }
});
// Filter forms with data-autosubmit submit when a select changes.
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el.tagName === "SELECT" && el.form && el.form.hasAttribute("data-autosubmit")) {
    el.form.submit();
  }
});
