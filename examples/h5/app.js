// wxinvoice example page: wx.config with the signature of this very page, chooseInvoice with the
// card_sign, the invoices' details from getInvoiceBatch, lock / close with updateStatus.
// The gateway's base URL and the optional bearer token come from config.js, set at deploy time.
(function () {
  "use strict";
  var settings = window.WXINVOICE || {};
  var api = settings.api || location.origin;
  var cfg = null;
  var rows = []; // [{ref: {card_id, encrypt_code}, card: {...}}]

  var STATUS = {
    INVOICE_REIMBURSE_INIT: "未锁定",
    INVOICE_REIMBURSE_LOCK: "已锁定",
    INVOICE_REIMBURSE_CLOSURE: "已核销",
    INVOICE_REIMBURSE_CANCEL: "已冲红",
  };

  function $(id) { return document.getElementById(id); }

  function say(text, ok) {
    var m = $("message");
    m.textContent = text;
    m.className = ok ? "ok" : "error";
  }

  // Amounts come in fen; shown in yuan.
  function yuan(fen) { return typeof fen === "number" ? (fen / 100).toFixed(2) : ""; }

  // billing_time is Unix seconds; invoices are dated in China time (UTC+8).
  function date(seconds) {
    if (typeof seconds !== "number") return "";
    return new Date((seconds + 8 * 3600) * 1000).toISOString().slice(0, 10);
  }

  function call(method, path, body) {
    var headers = body ? { "content-type": "application/json" } : {};
    if (typeof settings.bearer === "function") headers.authorization = "Bearer " + settings.bearer();
    return fetch(api + path, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (r) { return r.json(); });
  }

  function failure(v) {
    return (v.hint ? v.hint + "（" + v.errcode + "）" : "错误 " + v.errcode) + "：" + v.errmsg;
  }

  function render() {
    var body = $("invoices").querySelector("tbody");
    body.innerHTML = "";
    rows.forEach(function (row, i) {
      var u = row.card.user_info || {};
      var tr = document.createElement("tr");
      tr.dataset.index = String(i);
      [u.title, row.card.payee, u.billing_no, date(u.billing_time), yuan(u.fee), yuan(u.tax),
       STATUS[u.reimburse_status] || u.reimburse_status].forEach(function (text, col) {
        var td = document.createElement("td");
        td.textContent = text == null ? "" : String(text);
        if (col === 4 || col === 5) td.className = "amount";
        if (col === 6) td.className = "status";
        tr.appendChild(td);
      });
      var actions = document.createElement("td");
      [["锁定", "INVOICE_REIMBURSE_LOCK"], ["解锁", "INVOICE_REIMBURSE_INIT"], ["核销", "INVOICE_REIMBURSE_CLOSURE"]]
        .forEach(function (a) {
          var b = document.createElement("button");
          b.textContent = a[0];
          b.className = "set-" + a[1].slice(18).toLowerCase();
          b.onclick = function () { setStatus(i, a[1]); };
          actions.appendChild(b);
        });
      tr.appendChild(actions);
      body.appendChild(tr);
    });
    $("invoices").hidden = rows.length === 0;
  }

  function setStatus(i, status) {
    var row = rows[i];
    call("POST", "/core/r/api/weChat/updateStatus?token=" + encodeURIComponent(cfg.access_token), {
      openid: row.card.openid,
      reimburse_status: status,
      invoice_list: [row.ref],
    }).then(function (v) {
      if (v.errcode === 0) {
        row.card.user_info.reimburse_status = status;
        render();
        say("已更新：" + (STATUS[status] || status), true);
      } else {
        say(failure(v), false);
      }
    }, function (e) { say("网络错误：" + e, false); });
  }

  function load(refs) {
    call("POST", "/core/r/api/weChat/getInvoiceBatch?token=" + encodeURIComponent(cfg.access_token), {
      item_list: refs,
    }).then(function (v) {
      if (v.errcode !== 0) { say(failure(v), false); return; }
      // Each item names the invoice it answers (the gateway's encrypt_code field): several
      // invoices share one card_id, and WeChat may leave some out, so never pair by position.
      var missing = 0;
      rows = [];
      v.item_list.forEach(function (card) {
        if (card.gateway_missing) { missing++; return; }
        rows.push({ ref: { card_id: card.card_id, encrypt_code: card.encrypt_code }, card: card });
      });
      render();
      say("共 " + rows.length + " 张发票" + (missing ? "，" + missing + " 张未能读取" : ""), missing === 0);
    }, function (e) { say("网络错误：" + e, false); });
  }

  function choose() {
    wx.invoke("chooseInvoice", {
      timestamp: cfg.timestamp,
      nonceStr: cfg.noncestr,
      signType: cfg.sign_type,
      cardSign: cfg.card_sign,
    }, function (res) {
      if (res.err_msg !== "choose_invoice:ok") { say("未选择发票：" + res.err_msg, false); return; }
      // Official Account pages get a JSON string, WeCom an array.
      var info = typeof res.choose_invoice_info === "string" ? JSON.parse(res.choose_invoice_info) : res.choose_invoice_info;
      load(info.map(function (x) { return { card_id: x.card_id, encrypt_code: x.encrypt_code }; }));
    });
  }

  var page = location.href.split("#")[0];
  call("GET", "/core/r/api/weChat/getToken?url=" + encodeURIComponent(page)).then(function (v) {
    if (!v.signature) { say(failure(v), false); return; }
    cfg = v;
    wx.config({
      beta: true, // wx.invoke needs it
      debug: false,
      appId: cfg.appid,
      timestamp: cfg.timestamp,
      nonceStr: cfg.noncestr,
      signature: cfg.signature,
      jsApiList: ["chooseInvoice"],
    });
    wx.ready(function () {
      $("state").textContent = "已就绪";
      $("choose").disabled = false;
    });
    wx.error(function (e) { say("wx.config 失败：" + JSON.stringify(e), false); });
  }, function (e) { say("无法获取签名：" + e, false); });
  $("choose").onclick = choose;
})();
