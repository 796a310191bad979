// The dashboard's own script (served under a content hash, like every asset).
//
// Invitation and password-reset links carry their one-time token in the URL's
// fragment (#token=...), which browsers never send to a server, so it stays out
// of access logs and Referer headers. This copies it into the form field that
// asks for it; the form then posts it like any other field.
(function () {
  var m = /(?:^#|&)token=([A-Za-z0-9]+)/.exec(window.location.hash);
  if (!m) return;
  var fields = document.querySelectorAll("input[data-token-from-fragment]");
  for (var i = 0; i < fields.length; i++) fields[i].value = m[1];
})();
