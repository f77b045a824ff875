// Shows the failure message after a wrong token (the server redirects to /login?failed=1).
"use strict";
if (new URLSearchParams(window.location.search).has("failed")) {
  document.getElementById("login-failed").hidden = false;
}
