// Login page: POST /api/login as JSON (with the CSRF header), then go to the workspace.
(function () {
  "use strict";
  var form = document.getElementById("login-form");
  var errorBox = document.getElementById("login-error");
  var submit = document.getElementById("login-submit");

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var username = document.getElementById("username").value.trim();
    var password = document.getElementById("password").value;
    if (!username || !password) {
      showError("请输入用户名和密码");
      return;
    }
    submit.disabled = true;
    showError("");
    fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Kefu-Workspace": "1" },
      body: JSON.stringify({ username: username, password: password })
    }).then(function (response) {
      if (response.ok) {
        window.location.replace("/");
        return null;
      }
      return response.json().then(function (body) {
        showError((body && body.error) || "登录失败，请稍后重试");
      }, function () {
        showError("登录失败，请稍后重试");
      });
    }).catch(function () {
      showError("网络连接失败，请检查网络后重试");
    }).then(function () {
      submit.disabled = false;
    });
  });
})();
