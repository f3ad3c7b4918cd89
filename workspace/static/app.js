// Kefu agent workspace: queue, my conversations, callbacks and the conversation view.
// Plain JS, no build step. All text from the server is inserted with textContent.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var CALLBACK_POLL_MS = 5000;
  var PROFILE_LABELS = {
    name: "姓名", phone: "手机号", tier: "会员等级", points: "积分", customer_id: "客户编号",
    orders: "最近订单", recent_orders: "最近订单", order_id: "订单号", id: "编号", status: "状态",
    total: "金额", amount: "金额", created_at: "下单时间", items: "商品", city: "城市",
    registered_at: "注册时间", tags: "标签", note: "备注"
  };

  var state = {
    view: "queue",
    ticketId: null,
    ticket: null,
    seq: 0,
    queueTimer: null,
    messageTimer: null,
    callbackTimer: null,
    queueCount: 0
  };

  // ------------------------------------------------------------ helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  function show(node, visible) { node.hidden = !visible; }

  function ApiError(status, message, code) {
    this.status = status;
    this.message = message;
    this.code = code;
  }

  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-Kefu-Workspace"] = "1";
      options.body = JSON.stringify(body || {});
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 401) {
        window.location.replace("/login");
        throw new ApiError(401, "登录已失效，请重新登录", "unauthenticated");
      }
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          throw new ApiError(response.status, data.error || "操作失败，请稍后重试", data.code);
        }
        return data;
      });
    }, function () {
      throw new ApiError(0, "网络连接失败，请检查网络", "network");
    });
  }

  function toast(text, kind) {
    var box = $("toast");
    box.textContent = text;
    box.className = "toast" + (kind ? " toast-" + kind : "");
    show(box, true);
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { show(box, false); }, 4000);
  }

  function banner(text) {
    var box = $("banner");
    box.textContent = text || "";
    show(box, !!text);
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) { return seconds + " 秒"; }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) { return minutes + " 分 " + (seconds % 60) + " 秒"; }
    return Math.floor(minutes / 60) + " 小时 " + (minutes % 60) + " 分";
  }

  function cell(row, text, className) {
    var td = el("td", className, text === null || text === undefined || text === "" ? "—" : text);
    row.appendChild(td);
    return td;
  }

  function reasonCell(row, ticket) {
    var td = el("td");
    if (ticket.priority > 0) { td.appendChild(el("span", "badge badge-priority", "优先")); }
    td.appendChild(document.createTextNode(ticket.reason_label));
    row.appendChild(td);
  }

  function tierCell(row, ticket) {
    var td = el("td");
    td.appendChild(el("span", "tier tier-" + (ticket.tier || "anonymous"), ticket.tier_label));
    row.appendChild(td);
  }

  // ------------------------------------------------------------- router

  function route() {
    var hash = window.location.hash || "#/queue";
    var match = /^#\/ticket\/(\d+)$/.exec(hash);
    var view = match ? "ticket" : hash.replace(/^#\//, "");
    if (["queue", "mine", "callbacks", "ticket"].indexOf(view) < 0) { view = "queue"; }
    state.view = view;
    ["queue", "mine", "callbacks", "ticket"].forEach(function (name) {
      show($("view-" + name), name === view);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".tabs a"), function (a) {
      a.classList.toggle("active", a.getAttribute("data-tab") === view);
    });
    stopConversation();
    stopCallbacks();
    if (view === "ticket") { openConversation(Number(match[1])); }
    if (view === "callbacks") { startCallbacks(); }
  }

  // -------------------------------------------------------------- queue

  function pollQueue() {
    api("GET", "/api/queue").then(function (data) {
      banner("");
      renderQueue(data.queue);
      renderMine(data.mine);
      $("count-queue").textContent = data.queue.length;
      $("count-mine").textContent = data.mine.length;
      $("count-callbacks").textContent = data.callbacks;
      $("online").textContent = "在线客服 " + data.agents_online + " 人";
      $("agent-name").textContent = data.agent.display_name;
      document.title = (data.queue.length ? "(" + data.queue.length + ") " : "") + "客服工作台";
      state.queueCount = data.queue.length;
    }, function (error) {
      if (error.status !== 401) { banner("无法刷新队列：" + error.message + "，正在重试…"); }
    });
  }

  function renderQueue(tickets) {
    var body = $("queue-rows");
    clear(body);
    tickets.forEach(function (ticket) {
      var row = el("tr", ticket.priority > 0 ? "priority" : "");
      cell(row, ticket.position, "col-pos");
      reasonCell(row, ticket);
      tierCell(row, ticket);
      cell(row, ticket.masked_phone, "mono");
      cell(row, ticket.order_id, "mono");
      cell(row, ticket.channel_label);
      cell(row, duration(ticket.waiting_seconds), ticket.waiting_seconds >= 300 ? "late" : "");
      var action = el("td", "col-action");
      var button = el("button", "btn btn-primary btn-small", "接入");
      button.type = "button";
      button.addEventListener("click", function () { claim(ticket.id, button); });
      action.appendChild(button);
      row.appendChild(action);
      body.appendChild(row);
    });
    show($("queue-empty"), tickets.length === 0);
    show($("queue-table"), tickets.length > 0);
  }

  function renderMine(tickets) {
    var body = $("mine-rows");
    clear(body);
    tickets.forEach(function (ticket) {
      var row = el("tr");
      reasonCell(row, ticket);
      tierCell(row, ticket);
      cell(row, ticket.masked_phone, "mono");
      cell(row, ticket.order_id, "mono");
      cell(row, duration(ticket.waiting_seconds));
      var action = el("td", "col-action");
      var link = el("a", "btn btn-small", "打开会话");
      link.href = "#/ticket/" + ticket.id;
      action.appendChild(link);
      row.appendChild(action);
      body.appendChild(row);
    });
    show($("mine-empty"), tickets.length === 0);
  }

  function claim(ticketId, button) {
    button.disabled = true;
    api("POST", "/api/tickets/" + ticketId + "/claim").then(function () {
      window.location.hash = "#/ticket/" + ticketId;
      pollQueue();
    }, function (error) {
      button.disabled = false;
      toast(error.message, "error");
      pollQueue();
    });
  }

  // ---------------------------------------------------------- callbacks

  function startCallbacks() {
    loadCallbacks();
    state.callbackTimer = setInterval(loadCallbacks, CALLBACK_POLL_MS);
  }

  function stopCallbacks() {
    clearInterval(state.callbackTimer);
    state.callbackTimer = null;
  }

  function loadCallbacks() {
    api("GET", "/api/callbacks").then(function (data) {
      renderCallbacks(data.callbacks);
    }, function (error) { toast(error.message, "error"); });
  }

  function renderCallbacks(tickets) {
    var list = $("callback-list");
    clear(list);
    tickets.forEach(function (ticket) {
      var card = el("article", "card" + (ticket.priority > 0 ? " priority" : ""));
      var head = el("div", "card-head");
      if (ticket.priority > 0) { head.appendChild(el("span", "badge badge-priority", "优先")); }
      head.appendChild(el("strong", "", ticket.reason_label));
      head.appendChild(el("span", "muted", "留言时间 " + ticket.created_label));
      card.appendChild(head);
      card.appendChild(el("p", "callback-message", ticket.callback_message || "（客户未留言）"));
      var facts = el("dl", "facts facts-inline");
      addFact(facts, "回访方式", ticket.callback_preference);
      addFact(facts, "手机号", ticket.masked_phone);
      addFact(facts, "会员等级", ticket.tier_label);
      addFact(facts, "订单号", ticket.order_id);
      addFact(facts, "机器人摘要", ticket.summary);
      card.appendChild(facts);
      var button = el("button", "btn btn-small", "标记已回访");
      button.type = "button";
      button.addEventListener("click", function () {
        button.disabled = true;
        api("POST", "/api/callbacks/" + ticket.id + "/done").then(function () {
          toast("已标记为已回访");
          loadCallbacks();
          pollQueue();
        }, function (error) {
          button.disabled = false;
          toast(error.message, "error");
          loadCallbacks();
        });
      });
      card.appendChild(button);
      list.appendChild(card);
    });
    show($("callbacks-empty"), tickets.length === 0);
    $("count-callbacks").textContent = tickets.length;
  }

  // ------------------------------------------------------- conversation

  function addFact(list, label, value) {
    list.appendChild(el("dt", "", label));
    list.appendChild(el("dd", "", value === null || value === undefined || value === "" ? "—" : value));
  }

  function openConversation(ticketId) {
    state.ticketId = ticketId;
    state.ticket = null;
    state.seq = 0;
    clear($("messages"));
    $("conv-title").textContent = "会话 #" + ticketId;
    $("conv-status").textContent = "";
    show($("chat-error"), false);
    setHandback(true);
    $("reply-text").value = "";
    api("GET", "/api/tickets/" + ticketId).then(function (data) {
      if (state.ticketId !== ticketId) { return; }
      renderTicket(data);
      pollMessages();
      state.messageTimer = setInterval(pollMessages, POLL_MS);
    }, function (error) {
      toast(error.message, "error");
      window.location.hash = "#/queue";
    });
  }

  function stopConversation() {
    clearInterval(state.messageTimer);
    state.messageTimer = null;
    state.ticketId = null;
  }

  function renderTicket(data) {
    var ticket = data.ticket;
    state.ticket = ticket;
    $("conv-title").textContent = ticket.reason_label + " · 会话 #" + ticket.id;
    setStatus(ticket.status, ticket.status_label);
    $("summary").textContent = ticket.summary || "（机器人未生成摘要）";
    renderTranscriptLink(ticket.transcript_url);
    var facts = $("customer");
    clear(facts);
    addFact(facts, "客户编号", ticket.customer_id || "匿名访客");
    addFact(facts, "手机号", ticket.masked_phone);
    addFact(facts, "会员等级", ticket.tier_label);
    addFact(facts, "相关订单", ticket.order_id);
    addFact(facts, "渠道", ticket.channel_label);
    addFact(facts, "进入队列", ticket.created_label);
    addFact(facts, "接入时间", ticket.assigned_label);
    addFact(facts, "排队时长", duration(ticket.waiting_seconds));
    renderProfile(data.profile, data.profile_error);
  }

  function renderTranscriptLink(url) {
    var box = $("transcript-link");
    clear(box);
    if (url && /^https?:\/\//i.test(url)) {
      var link = el("a", "", "查看完整对话记录");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      box.appendChild(link);
    }
    show(box, box.firstChild !== null);
  }

  function setStatus(status, label) {
    var badge = $("conv-status");
    badge.textContent = label;
    badge.className = "status status-" + status;
    var open = status === "assigned";
    show($("reply-form"), open);
    show($("closed-note"), !open);
    show($("close-ticket"), open);
  }

  function renderProfile(profile, error) {
    var box = $("profile");
    clear(box);
    if (error) {
      box.appendChild(el("p", "muted", error));
    } else if (profile && typeof profile === "object") {
      renderValue(box, profile);
    }
    show($("profile-panel"), !!error || (profile && Object.keys(profile).length > 0));
  }

  function labelOf(key) { return PROFILE_LABELS[key] || key; }

  function isScalar(value) { return value === null || typeof value !== "object"; }

  function renderValue(box, value) {
    var facts = el("dl", "facts");
    Object.keys(value).forEach(function (key) {
      var item = value[key];
      if (isScalar(item)) {
        addFact(facts, labelOf(key), item);
      } else if (Array.isArray(item)) {
        box.appendChild(facts);
        facts = el("dl", "facts");
        box.appendChild(el("h3", "", labelOf(key)));
        box.appendChild(renderList(item));
      } else {
        renderValue(box, item);
      }
    });
    if (facts.firstChild) { box.appendChild(facts); }
  }

  function renderList(items) {
    if (!items.length) { return el("p", "muted", "暂无"); }
    if (items.every(isScalar)) { return el("p", "", items.join("、")); }
    var keys = [];
    items.forEach(function (item) {
      Object.keys(item || {}).forEach(function (k) { if (keys.indexOf(k) < 0) { keys.push(k); } });
    });
    var table = el("table", "grid grid-compact");
    var headRow = el("tr");
    keys.forEach(function (k) { headRow.appendChild(el("th", "", labelOf(k))); });
    var thead = el("thead");
    thead.appendChild(headRow);
    table.appendChild(thead);
    var body = el("tbody");
    items.forEach(function (item) {
      var row = el("tr");
      keys.forEach(function (k) {
        var v = item ? item[k] : "";
        cell(row, isScalar(v) ? v : JSON.stringify(v));
      });
      body.appendChild(row);
    });
    table.appendChild(body);
    return table;
  }

  function pollMessages() {
    var ticketId = state.ticketId;
    if (ticketId === null) { return; }
    api("GET", "/api/tickets/" + ticketId + "/messages?after=" + state.seq).then(function (data) {
      if (state.ticketId !== ticketId) { return; }
      show($("chat-error"), false);
      if (data.reset) { clear($("messages")); }
      appendMessages(data.messages);
      state.seq = data.total;
      if (state.ticket && data.status !== state.ticket.status) {
        state.ticket.status = data.status;
        setStatus(data.status, data.status_label);
      }
    }, function (error) {
      if (state.ticketId !== ticketId) { return; }
      $("chat-error").textContent = error.message;
      show($("chat-error"), true);
      if (error.status === 403 || error.status === 404) { stopConversation(); }
    });
  }

  var ROLE_NAMES = { customer: "客户", bot: "机器人", system: "" };

  function appendMessages(messages) {
    var box = $("messages");
    var nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    messages.forEach(function (message) {
      var item = el("div", "msg msg-" + message.role);
      var meta = el("div", "msg-meta");
      var who = message.role === "agent" ? "客服 " + (message.agent || "") : ROLE_NAMES[message.role];
      if (who) { meta.appendChild(el("span", "msg-who", who)); }
      meta.appendChild(el("span", "msg-time", message.time));
      item.appendChild(meta);
      item.appendChild(el("div", "msg-text", message.text));
      box.appendChild(item);
    });
    if (messages.length && (nearBottom || state.seq === 0)) { box.scrollTop = box.scrollHeight; }
  }

  function sendReply(event) {
    event.preventDefault();
    var input = $("reply-text");
    var text = input.value.trim();
    var errorBox = $("reply-error");
    if (!text || state.ticketId === null) { return; }
    $("reply-send").disabled = true;
    show(errorBox, false);
    api("POST", "/api/tickets/" + state.ticketId + "/reply", { text: text }).then(function () {
      input.value = "";
      pollMessages();
    }, function (error) {
      errorBox.textContent = error.message;
      show(errorBox, true);
    }).then(function () {
      $("reply-send").disabled = false;
      input.focus();
    });
  }

  function closeTicket() {
    if (state.ticketId === null) { return; }
    if (!window.confirm("确定结束本次会话，并把客户交还给机器人吗？")) { return; }
    var button = $("close-ticket");
    button.disabled = true;
    api("POST", "/api/tickets/" + state.ticketId + "/close").then(afterHandback, function (error) {
      toast(error.message, "error");
    }).then(function () { button.disabled = false; });
  }

  function retryHandback() {
    if (state.ticketId === null) { return; }
    var button = $("handback-retry");
    button.disabled = true;
    api("POST", "/api/tickets/" + state.ticketId + "/handback").then(afterHandback, function (error) {
      toast(error.message, "error");
    }).then(function () { button.disabled = false; });
  }

  function afterHandback(data) {
    state.ticket = data.ticket;
    setStatus(data.ticket.status, data.ticket.status_label);
    setHandback(data.handback, data.warning);
    if (data.handback) { toast("会话已结束，客户已交还机器人"); }
    pollQueue();
  }

  function setHandback(ok, warning) {
    $("closed-text").textContent = ok ? "会话已结束，客户已交还机器人。" : warning;
    $("closed-note").classList.toggle("closed-warning", !ok);
    show($("handback-retry"), !ok);
  }

  // -------------------------------------------------------------- start

  function logout() {
    api("POST", "/api/logout").then(function () {
      window.location.replace("/login");
    }, function (error) { toast(error.message, "error"); });
  }

  $("reply-form").addEventListener("submit", sendReply);
  $("reply-text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { sendReply(event); }
  });
  $("close-ticket").addEventListener("click", closeTicket);
  $("handback-retry").addEventListener("click", retryHandback);
  $("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);

  route();
  pollQueue();
  state.queueTimer = setInterval(pollQueue, POLL_MS);
})();
