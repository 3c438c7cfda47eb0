// The copy buttons (button.copy with data-copy = the id of the field to copy, data-done =
// what to say once copied). A file, not an inline script: the pages' Content-Security-Policy
// allows scripts from the portal itself only.
document.querySelectorAll("button.copy").forEach(function (b) {
  b.addEventListener("click", function () {
    var field = document.getElementById(b.dataset.copy);
    var say = function () { document.getElementById("copy-status").textContent = b.dataset.done; };
    field.select();
    // execCommand answers at once inside the click; the Clipboard API where it is refused
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
    if (copied) { say(); }
    else if (navigator.clipboard) { navigator.clipboard.writeText(field.value).then(say); }
  });
});
