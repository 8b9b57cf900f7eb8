import assert from "node:assert/strict";
import { test } from "node:test";
import { SignatureError, chooseInvoices, chooseInvoicesWecom, configure, registerWecom } from "../dist/index.js";
import { chooseInvoices as chooseInMini, createClient as miniClient, requestFetch } from "../dist/mini.js";

const LANDING = "https://expense.example.com/app/?from=menu";
const CURRENT = "https://expense.example.com/app/claims/7?tab=2#invoices";
const IOS = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50";
const ANDROID = "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50";

// A gateway that signs "sig:<url>", and answers debug=1 with what it signed.
function gateway() {
  const asked = [];
  return {
    asked,
    async getToken(url, debug = false) {
      asked.push({ url, debug });
      return { appid: "wx1", timestamp: 1, noncestr: "n", url, signature: `sig:${url}`, card_sign: "cs", sign_type: "SHA1",
        ...(debug ? { debug: { signed: `jsapi_ticket=***&noncestr=n&timestamp=1&url=${url}` } } : {}) };
    },
  };
}

// jweixin as WeChat runs it: the signature is checked against the URL WeChat itself holds.
function wechat(checks) {
  let ready = () => {};
  let error = () => {};
  return {
    ready: (f) => { ready = f; },
    error: (f) => { error = f; },
    config: (c) => queueMicrotask(() => (c.signature === `sig:${checks}` ? ready() : error({ errMsg: "config:invalid signature" }))),
    invoke: (name, args, cb) => cb({ err_msg: `${name}:ok`, choose_invoice_info: JSON.stringify([{ card_id: "c", encrypt_code: "e", app_id: "wx1" }]), args }),
  };
}

test("iOS: the landing URL is signed, and WeChat accepts it at once", async () => {
  const gw = gateway();
  const answer = await configure(wechat(LANDING), gw, { href: CURRENT, landing: LANDING, userAgent: IOS });
  assert.equal(answer.url, LANDING);
  assert.equal(gw.asked.length, 1);
});

test("Android: the current URL without its fragment is signed", async () => {
  const gw = gateway();
  const answer = await configure(wechat(CURRENT.split("#")[0]), gw, { href: CURRENT, landing: LANDING, userAgent: ANDROID });
  assert.equal(answer.url, "https://expense.example.com/app/claims/7?tab=2");
  assert.equal(gw.asked.length, 1);
});

test("invalid signature: the other URL once, then what was signed is reported", async () => {
  // A client that checks the current URL although it says iOS: mended by the retry.
  const gw = gateway();
  const answer = await configure(wechat(CURRENT.split("#")[0]), gw, { href: CURRENT, landing: LANDING, userAgent: IOS });
  assert.deepEqual(gw.asked.map((a) => a.url), [LANDING, CURRENT.split("#")[0]]);
  assert.equal(answer.url, CURRENT.split("#")[0]);
  // Neither URL: a SignatureError with both tried and the masked string signed.
  const gw2 = gateway();
  await assert.rejects(configure(wechat("https://elsewhere.example.com/"), gw2, { href: CURRENT, landing: LANDING, userAgent: ANDROID }), (e) => {
    assert.ok(e instanceof SignatureError);
    assert.deepEqual(e.tried, [CURRENT.split("#")[0], LANDING]);
    assert.equal(e.signed, `jsapi_ticket=***&noncestr=n&timestamp=1&url=${LANDING}`);
    return true;
  });
  assert.equal(gw2.asked.at(-1).debug, true);
});

test("chooseInvoice on an Official Account page is signed with card_sign and normalised", async () => {
  const wx = wechat(LANDING);
  let sent;
  wx.invoke = (name, args, cb) => { sent = { name, args }; cb({ err_msg: "chooseInvoice:ok", invoiceInfo: '[{"cardId":"c","encryptCode":"e"}]' }); };
  const picked = await chooseInvoices(wx, { timestamp: 1, noncestr: "n", card_sign: "cs", sign_type: "SHA1" });
  assert.deepEqual(sent, { name: "chooseInvoice", args: { timestamp: 1, nonceStr: "n", signType: "SHA1", cardSign: "cs" } });
  assert.deepEqual(picked, [{ card_id: "c", encrypt_code: "e" }]);
  wx.invoke = (name, args, cb) => cb({ err_msg: "chooseInvoice:cancel" });
  await assert.rejects(chooseInvoices(wx, { timestamp: 1, noncestr: "n" }), /chooseInvoice:cancel/);
});

test("chooseInvoice on a WeCom page and in a mini program", async () => {
  const ww = { chooseInvoice: async (args) => ({ errMsg: "chooseInvoice:ok", choose_invoice_info: [{ card_id: "c", encrypt_code: "e", app_id: args.cardSign }] }) };
  assert.deepEqual(await chooseInvoicesWecom(ww, { timestamp: 1, noncestr: "n", card_sign: "cs" }), [{ card_id: "c", encrypt_code: "e", app_id: "cs" }]);
  const mini = { chooseInvoice: ({ success }) => success({ invoiceInfo: [{ cardId: "c", encryptCode: "e", appId: "wxm" }] }) };
  assert.deepEqual(await chooseInMini(mini), [{ card_id: "c", encrypt_code: "e", app_id: "wxm" }]);
  const refused = { chooseInvoice: ({ fail }) => fail({ errMsg: "chooseInvoice:fail cancel" }) };
  await assert.rejects(chooseInMini(refused), /fail cancel/);
});

test("WeCom: ww.register gets config and agentConfig signed for the URL ww asks, one getToken per URL", async () => {
  const asked = [];
  const gw = {
    async getToken(url, debug = false) {
      asked.push({ url, debug });
      return { appid: "ww1", timestamp: 7, noncestr: "n", url, signature: `sig:${url}`, card_sign: "cs", sign_type: "SHA1",
        agent_config: { agentid: "1000002", signature: `agent:${url}` },
        ...(debug ? { debug: { signed: "s", agent_signed: `jsapi_ticket=***&url=${url}` } } : {}) };
    },
  };
  let registered;
  const ww = { register: (o) => { registered = o; }, chooseInvoice: async () => ({ errMsg: "chooseInvoice:ok", choose_invoice_info: [] }) };
  const answer = await registerWecom(ww, gw, { href: CURRENT });
  const page = CURRENT.split("#")[0];
  assert.equal(answer.url, page);
  assert.equal(registered.corpId, "ww1");
  assert.equal(registered.agentId, "1000002");
  assert.deepEqual(registered.jsApiList, ["chooseInvoice"]);
  // ww asks for the page it is on (after a history navigation, another one).
  assert.deepEqual(await registered.getConfigSignature(page), { timestamp: 7, nonceStr: "n", signature: `sig:${page}` });
  assert.deepEqual(await registered.getAgentConfigSignature(page), { timestamp: 7, nonceStr: "n", signature: `agent:${page}` });
  assert.equal(asked.length, 1, "one getToken for the page");
  const moved = "https://expense.example.com/app/claims/8";
  assert.equal((await registered.getAgentConfigSignature(`${moved}#x`)).signature, `agent:${moved}`);
  assert.equal(asked.length, 2);
  // WeCom refuses the signature: a SignatureError with the agentConfig string the gateway signed.
  ww.chooseInvoice = () => Promise.reject({ errMsg: "agentConfig:invalid signature", errCode: -1 });
  await assert.rejects(chooseInvoicesWecom(ww, answer, gw), (e) => {
    assert.ok(e instanceof SignatureError);
    assert.equal(e.signed, `jsapi_ticket=***&url=${page}`);
    return true;
  });
  // An app without an agent cannot register.
  const noAgent = { async getToken(url) { return { appid: "ww1", timestamp: 7, noncestr: "n", url, signature: "s" }; } };
  await assert.rejects(registerWecom(ww, noAgent, { href: CURRENT }), /agent_config/);
});

test("a mini program's client calls the gateway through wx.request", async () => {
  const sent = [];
  const wx = {
    request(args) {
      sent.push(args);
      const body = args.url.includes("getToken")
        ? { access_token: "AT", expires_in: 7000, appid: "wxm" }
        : { errcode: 72039, errmsg: "invoice must be lock first", hint: "订单未被锁定" };
      setTimeout(() => args.success({ statusCode: 200, data: JSON.stringify(body), header: { "Apigw-Requestid": "r-1" } }), 0);
    },
  };
  const gw = miniClient({ api: "https://gw.example.com", appid: "wxm", fetch: requestFetch(wx) });
  await gw.getToken();
  await assert.rejects(gw.close("claim-1", { openid: "o" }, [{ card_id: "c", encrypt_code: "e" }]),
    (e) => e.errcode === 72039 && e.hint === "订单未被锁定" && e.requestId === "r-1");
  assert.equal(sent[1].method, "POST");
  assert.equal(new URL(sent[1].url).searchParams.get("token"), "AT");
  assert.equal(JSON.parse(sent[1].data).reimburse_status, "INVOICE_REIMBURSE_CLOSURE");
  assert.ok(sent[1].header["idempotency-key"]);
  // A request that never reached the gateway is a network error, retried with the same key.
  const failing = { request: (args) => args.fail({ errMsg: "request:fail timeout" }) };
  const off = miniClient({ api: "https://gw.example.com", fetch: requestFetch(failing), retries: 0 });
  await assert.rejects(off.lock("c", { openid: "o" }, []), /request:fail timeout/);
});
