import assert from "node:assert/strict";
import { test } from "node:test";
import {
  WxInvoiceError, beijingDate, createClient, isFullyDigital, normalizeChosen, pair, urlToSign, yuan,
} from "../dist/index.js";

test("fen become yuan exactly", () => {
  for (const [fen, want] of [[1230, "12.30"], [5, "0.05"], [0, "0.00"], [-5, "-0.05"], [123456789, "1234567.89"]]) {
    assert.equal(yuan(fen), want, String(fen));
  }
});

test("billing_time is a date in Beijing time: the day turns at 16:00 UTC", () => {
  assert.equal(beijingDate(Date.UTC(2026, 0, 1, 15, 59, 59) / 1000), "2026-01-01");
  assert.equal(beijingDate(Date.UTC(2026, 0, 1, 16, 0, 0) / 1000), "2026-01-02");
});

test("fully digital invoices: a 20-digit number, no invoice code", () => {
  assert.equal(isFullyDigital({ billing_no: "25312000000123456789", billing_code: "" }), true);
  assert.equal(isFullyDigital({ billing_no: "25312000000123456789" }), true);
  assert.equal(isFullyDigital({ billing_no: "00263938", billing_code: "144002010000" }), false);
  assert.equal(isFullyDigital({}), false);
});

test("chooseInvoice's result forms are normalised", () => {
  const want = [{ card_id: "c1", encrypt_code: "e1", app_id: "wx1" }, { card_id: "c2", encrypt_code: "e2" }];
  // An Official Account page: invoiceInfo as a JSON string, camelCase keys.
  assert.deepEqual(normalizeChosen({ invoiceInfo: JSON.stringify([
    { cardId: "c1", encryptCode: "e1", appId: "wx1" }, { cardId: "c2", encryptCode: "e2" }]) }), want);
  // WeCom and mini programs: an array, snake_case keys.
  assert.deepEqual(normalizeChosen({ choose_invoice_info: [
    { card_id: "c1", encrypt_code: "e1", app_id: "wx1" }, { card_id: "c2", encrypt_code: "e2" }] }), want);
  assert.deepEqual(normalizeChosen({ invoiceInfo: "not json" }), []);
  assert.deepEqual(normalizeChosen({ invoiceInfo: [{ cardId: 1 }] }), []);
});

test("the batch is paired by encrypt_code and what WeChat did not return is reported", () => {
  const picked = [{ card_id: "c", encrypt_code: "e1" }, { card_id: "c", encrypt_code: "e2" }, { card_id: "d", encrypt_code: "e3" }];
  const items = [
    { card_id: "c", encrypt_code: "e2", user_info: { fee: 1230, billing_time: 1767283200 } },
    { card_id: "d", encrypt_code: "e3", gateway_missing: { errcode: 72023, errmsg: "invoice not found" } },
    { card_id: "c", encrypt_code: "e1", user_info: { fee: 5 } },
  ];
  const { invoices, missing } = pair(picked, items);
  assert.deepEqual(invoices.map((i) => [i.item.encrypt_code, i.amount]), [["e1", "0.05"], ["e2", "12.30"]]);
  assert.equal(invoices[1].billingDate, "2026-01-02");
  assert.deepEqual(missing, [{ card_id: "d", encrypt_code: "e3" }]);
});

test("the signed URL: the landing URL on iOS, the current one on Android, no fragment", () => {
  const landing = "https://expense.example.com/app/?from=menu";
  const current = "https://expense.example.com/app/invoices?id=1#top";
  const ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50";
  const android = "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50";
  assert.equal(urlToSign(current, landing, ios), landing);
  assert.equal(urlToSign(current, landing, android), "https://expense.example.com/app/invoices?id=1");
  assert.equal(urlToSign(current, undefined, ios), "https://expense.example.com/app/invoices?id=1");
});

function fakeFetch(answers) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url: new URL(url), init });
    const [status, body, headers] = answers.shift();
    if (status === "network") throw new TypeError("network error");
    return new Response(JSON.stringify(body), { status, headers: headers ?? {} });
  };
  return { fetch, calls };
}

test("a status change keeps its Idempotency-Key across the retries of a lost answer", async () => {
  const { fetch, calls } = fakeFetch([[503, { errcode: -1, errmsg: "busy" }], ["network"], [200, { errcode: 0, errmsg: "ok" }]]);
  const client = createClient({ api: "https://gw.example.com", appid: "wxb", fetch, bearer: () => "jwt" });
  await client.lock("claim-1", { openid: "o1" }, [{ card_id: "c", encrypt_code: "e", extra: 1 }]);
  assert.equal(calls.length, 3);
  const keys = new Set(calls.map((c) => c.init.headers["idempotency-key"]));
  assert.equal(keys.size, 1);
  assert.ok([...keys][0]);
  const body = JSON.parse(calls[0].init.body);
  assert.deepEqual(body, { openid: "o1", reimburse_status: "INVOICE_REIMBURSE_LOCK", claim_id: "claim-1",
    invoice_list: [{ card_id: "c", encrypt_code: "e" }] });
  assert.equal(calls[0].url.pathname, "/core/r/api/weChat/updateStatus");
  assert.equal(calls[0].url.searchParams.get("appid"), "wxb");
  assert.equal(calls[0].init.headers.authorization, "Bearer jwt");
  // Another change is another key.
  const more = fakeFetch([[200, { errcode: 0, errmsg: "ok" }]]);
  await createClient({ api: "https://gw.example.com", fetch: more.fetch }).close("claim-1", { openid: "o1" }, []);
  assert.notEqual(more.calls[0].init.headers["idempotency-key"], [...keys][0]);
});

test("refusals are typed errors with errcode, hints and the request id, and are not retried", async () => {
  const { fetch, calls } = fakeFetch([[409, { errcode: -3, errmsg: "held by another claim", gateway_hint: "发票已被其他报销单占用" },
    { "apigw-requestid": "LV7fzho-PHcEJPw=" }]]);
  const client = createClient({ api: "https://gw.example.com", fetch });
  await assert.rejects(client.unlock("claim-2", { openid: "o1" }, [{ card_id: "c", encrypt_code: "e" }]), (e) => {
    assert.ok(e instanceof WxInvoiceError);
    assert.equal(e.status, 409);
    assert.equal(e.errcode, -3);
    assert.equal(e.gatewayHint, "发票已被其他报销单占用");
    assert.equal(e.requestId, "LV7fzho-PHcEJPw=");
    return true;
  });
  assert.equal(calls.length, 1);
  // WeChat's own error with HTTP 200 is an error too.
  const wechat = fakeFetch([[200, { errcode: 40001, errmsg: "invalid credential", hint: "token无效" }]]);
  await assert.rejects(createClient({ api: "https://gw.example.com", fetch: wechat.fetch }).getToken(), (e) => e.errcode === 40001 && e.hint === "token无效");
});

test("getToken asks for the page URL and, when asked, what was signed", async () => {
  const { fetch, calls } = fakeFetch([[200, { errcode: 0, appid: "wx1", signature: "s" }]]);
  await createClient({ api: "https://gw.example.com", appid: "ww1", agentid: "1000002", fetch })
    .getToken("https://expense.example.com/p?a=1", true);
  const q = calls[0].url.searchParams;
  assert.deepEqual([q.get("url"), q.get("debug"), q.get("appid"), q.get("agentid")],
    ["https://expense.example.com/p?a=1", "1", "ww1", "1000002"]);
  assert.equal(calls[0].init.method, "GET");
});

test("a WeCom page names the member by userid", async () => {
  const { fetch, calls } = fakeFetch([[200, { errcode: 0, errmsg: "ok" }]]);
  await createClient({ api: "https://gw.example.com", appid: "ww1", agentid: "1000002", fetch })
    .lock("claim-3", { userid: "zhangsan" }, [{ card_id: "c", encrypt_code: "e" }]);
  const body = JSON.parse(calls[0].init.body);
  assert.equal(body.userid, "zhangsan");
  assert.equal(body.openid, undefined);
});

test("the access_token of getToken's answer goes with the invoice calls; none in hardened mode", async () => {
  const { fetch, calls } = fakeFetch([
    [200, { access_token: "AT1", expires_in: 7000, appid: "wxm" }],
    [200, { errcode: 0, errmsg: "ok", item_list: [] }],
    [200, { errcode: 0, errmsg: "ok" }],
  ]);
  const api = createClient({ api: "https://gw.example.com", appid: "wxm", fetch });
  await api.getToken();
  await api.getInvoices([]);
  await api.lock("claim-1", { openid: "o" }, []);
  assert.deepEqual(calls.map((c) => c.url.searchParams.get("token")), [null, "AT1", "AT1"]);
  const hardened = fakeFetch([[200, { expires_in: 7000, appid: "wxm" }], [200, { errcode: 0, errmsg: "ok", item_list: [] }]]);
  const h = createClient({ api: "https://gw.example.com", fetch: hardened.fetch });
  await h.getToken();
  await h.getInvoices([]);
  assert.equal(hardened.calls[1].url.searchParams.has("token"), false);
});
