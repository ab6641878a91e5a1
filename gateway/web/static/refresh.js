// Reload the status page every 30 s, but never while someone is typing a PIN.
setInterval(function () {
  var a = document.activeElement;
  if (!a || (a.tagName !== "INPUT" && a.tagName !== "BUTTON")) { location.reload(); }
}, 30000);
