/* Kefu customer web chat: talks to Rasa's socketio channel.
 *
 * Needs window.io (/vendor/socket.io.min.js, socket.io-client 4.x) and
 * window.KEFU_CONFIG (/config.js): {rasaUrl, shopName, metadata?, socketPath?}.
 * No framework; message text is only ever put into the page with
 * textContent, never innerHTML.
 */
(function () {
  "use strict";

  var MAX_LEN = 2000;
  var SESSION_KEY = "kefu_session_id";
  var TYPING_TIMEOUT_MS = 20000;
  var STATUS_TEXT = {
    connecting: "连接中…",
    connected: "已连接",
    disconnected: "连接已断开，正在重试…",
    unavailable: "无法加载聊天组件，请刷新重试"
  };

  var config = window.KEFU_CONFIG || {};
  var rasaUrl = String(config.rasaUrl || "http://localhost:5005");
  var socketPath = String(config.socketPath || "/socket.io/");

  var root = document.getElementById("kefu-chat");
  var log = document.getElementById("kefu-log");
  var form = document.getElementById("kefu-form");
  var input = document.getElementById("kefu-input");
  var sendButton = document.getElementById("kefu-send");
  var counter = document.getElementById("kefu-counter");
  var statusEl = document.getElementById("kefu-status");
  var typingEl = document.getElementById("kefu-typing");

  var socket = null;
  var sessionId = loadSessionId();
  var ready = false; // connected and session confirmed
  var pending = []; // messages typed while not ready, sent after session_confirm
  var typingTimer = null;

  /* ---------- storage (localStorage may be unavailable) ---------- */

  var memoryStore = {};

  function loadSessionId() {
    var value = null;
    try {
      value = window.localStorage.getItem(SESSION_KEY);
    } catch (e) {
      value = memoryStore[SESSION_KEY] || null;
    }
    return value && /^[A-Za-z0-9_-]{1,128}$/.test(value) ? value : null;
  }

  function saveSessionId(value) {
    memoryStore[SESSION_KEY] = value;
    try {
      window.localStorage.setItem(SESSION_KEY, value);
    } catch (e) {
      /* private mode: keep it in memory only */
    }
  }

  /* ---------- rendering ---------- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function isNearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function scrollToBottom() {
    log.scrollTop = log.scrollHeight;
  }

  function appendToLog(node) {
    log.appendChild(node);
    scrollToBottom();
  }

  function safeImageUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var url = new URL(value, window.location.href);
      if (url.protocol === "http:" || url.protocol === "https:") return url.href;
      if (url.protocol === "data:" && /^data:image\/(png|jpe?g|gif|webp);/i.test(value)) return value;
    } catch (e) {
      /* not a URL */
    }
    return null;
  }

  function addUserMessage(text) {
    var msg = el("div", "kefu-msg kefu-user");
    msg.appendChild(el("div", "kefu-bubble kefu-text", text));
    appendToLog(msg);
    return msg;
  }

  function addImage(container, src) {
    var url = safeImageUrl(src);
    if (!url) return false;
    var img = el("img", "kefu-image");
    img.alt = "图片";
    img.loading = "lazy";
    img.referrerPolicy = "no-referrer";
    img.addEventListener("load", function () {
      if (isNearBottom() || container === log.lastElementChild) scrollToBottom();
    });
    img.addEventListener("error", function () {
      img.replaceWith(el("div", "kefu-bubble kefu-muted", "[图片无法显示]"));
    });
    img.src = url;
    container.appendChild(img);
    return true;
  }

  function normaliseButtons(list) {
    if (!Array.isArray(list)) return [];
    var out = [];
    for (var i = 0; i < list.length; i++) {
      var b = list[i];
      if (!b || typeof b !== "object") continue;
      var title = b.title !== undefined && b.title !== null ? String(b.title) : "";
      var payload = b.payload !== undefined && b.payload !== null ? String(b.payload) : title;
      if (!title && !payload) continue;
      out.push({ title: title || payload, payload: payload });
    }
    return out;
  }

  function addButtons(container, buttons) {
    if (!buttons.length) return;
    var group = el("div", "kefu-buttons");
    buttons.forEach(function (b) {
      var btn = el("button", "kefu-button", b.title);
      btn.type = "button";
      btn.setAttribute("data-payload", b.payload);
      btn.addEventListener("click", function () {
        if (btn.disabled) return;
        var all = group.querySelectorAll("button");
        for (var j = 0; j < all.length; j++) all[j].disabled = true;
        btn.classList.add("kefu-chosen");
        sendMessage(b.title, b.payload);
      });
      group.appendChild(btn);
    });
    container.appendChild(group);
  }

  /* Render one bot_uttered payload. Unknown shapes are ignored. */
  function addBotMessage(data) {
    if (typeof data === "string") data = { text: data };
    if (!data || typeof data !== "object") return;
    hideTyping();

    var msg = el("div", "kefu-msg kefu-bot");
    var hasContent = false;

    if (typeof data.text === "string" && data.text.trim() !== "") {
      msg.appendChild(el("div", "kefu-bubble kefu-text", data.text));
      hasContent = true;
    }

    if (typeof data.image === "string") {
      hasContent = addImage(msg, data.image) || hasContent;
    }

    var att = data.attachment;
    if (att && typeof att === "object") {
      var p = att.payload && typeof att.payload === "object" ? att.payload : {};
      if (att.type === "image") {
        hasContent = addImage(msg, p.src || p.url) || hasContent;
      }
      /* other attachment types (templates, files, video) are not shown */
    }

    var buttons = normaliseButtons(data.buttons).concat(normaliseButtons(data.quick_replies));
    if (buttons.length) {
      addButtons(msg, buttons);
      hasContent = true;
    }

    if (hasContent) appendToLog(msg);
  }

  function showTyping() {
    typingEl.hidden = false;
    scrollToBottom();
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    typingEl.hidden = true;
  }

  /* ---------- state ---------- */

  function setStatus(state) {
    statusEl.textContent = STATUS_TEXT[state] || state;
    statusEl.setAttribute("data-state", state);
    root.setAttribute("data-state", state);
  }

  function updateComposer() {
    var length = input.value.length;
    counter.textContent = length + "/" + MAX_LEN;
    counter.classList.toggle("kefu-counter-full", length >= MAX_LEN);
    sendButton.disabled = input.value.trim() === "";
  }

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  }

  /* ---------- sending ---------- */

  function emitMessage(payload) {
    socket.emit("user_uttered", {
      message: payload,
      session_id: sessionId,
      metadata: (window.KEFU_CONFIG && window.KEFU_CONFIG.metadata) || {}
    });
    showTyping();
  }

  /* Show `shown` as the customer's bubble and send `payload` (defaults to shown). */
  function sendMessage(shown, payload) {
    var text = String(shown).slice(0, MAX_LEN);
    if (text.trim() === "") return false;
    var toSend = payload === undefined ? text.trim() : String(payload);
    var msg = addUserMessage(text);
    if (ready && socket) {
      emitMessage(toSend);
    } else {
      var note = el("span", "kefu-pending-note", "等待连接…");
      msg.classList.add("kefu-pending");
      msg.appendChild(note);
      pending.push({ payload: toSend, msg: msg, note: note });
    }
    return true;
  }

  function flushPending() {
    var queued = pending;
    pending = [];
    queued.forEach(function (item) {
      item.msg.classList.remove("kefu-pending");
      item.note.remove();
      emitMessage(item.payload);
    });
  }

  function submitInput() {
    if (sendMessage(input.value)) {
      input.value = "";
      updateComposer();
      autoGrow();
    }
    input.focus();
  }

  /* ---------- wiring ---------- */

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitInput();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.shiftKey) return;
    /* Enter that confirms an IME candidate (pinyin) must not send */
    if (event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submitInput();
  });

  input.addEventListener("input", function () {
    if (input.value.length > MAX_LEN) input.value = input.value.slice(0, MAX_LEN);
    updateComposer();
    autoGrow();
  });

  var shopName = typeof config.shopName === "string" ? config.shopName : "";
  document.getElementById("kefu-shop").textContent = shopName;
  if (shopName) document.title = "在线客服 - " + shopName;
  document.getElementById("kefu-welcome").textContent =
    "欢迎来到" + (shopName || "本店") + "，请问有什么可以帮您？";
  if (sessionId) root.setAttribute("data-session-id", sessionId);
  updateComposer();

  function connect() {
    if (typeof window.io !== "function") {
      setStatus("unavailable");
      return;
    }
    var target;
    try {
      target = new URL(rasaUrl, window.location.href).origin;
    } catch (e) {
      target = rasaUrl;
    }
    setStatus("connecting");
    socket = window.io(target, {
      path: socketPath,
      transports: ["websocket", "polling"],
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 10000
    });

    socket.on("connect", function () {
      ready = false;
      socket.emit("session_request", { session_id: sessionId });
    });

    socket.on("session_confirm", function (data) {
      var id = data && typeof data === "object" ? data.session_id : data;
      if (typeof id === "string" && id) {
        sessionId = id;
        saveSessionId(id);
        root.setAttribute("data-session-id", id);
      }
      ready = true;
      setStatus("connected");
      flushPending();
    });

    socket.on("bot_uttered", addBotMessage);

    socket.on("disconnect", function (reason) {
      ready = false;
      hideTyping();
      setStatus("disconnected");
      /* a server-side disconnect is not retried by socket.io itself */
      if (reason === "io server disconnect") socket.connect();
    });

    socket.on("connect_error", function () {
      ready = false;
      setStatus("disconnected");
      /* refused by the server (not retried by socket.io): try again later */
      if (!socket.active) setTimeout(function () { socket.connect(); }, 5000);
    });
  }

  connect();

  /* small read-only hook for debugging and tests */
  window.KefuChat = {
    sessionId: function () { return sessionId; },
    isReady: function () { return ready; }
  };
})();
