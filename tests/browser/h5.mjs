// The example pages (examples/h5, built on @wxinvoice/web) in Debian's headless Chromium against
// the local stack, with the official SDKs unmodified: jweixin 1.6.0 (npm `jweixin-module`, served
// where the page loads it from) on the Official Account page, @wecom/jssdk (bundled) on the WeCom
// page. What WeChat's native side does is played by a recording WeixinJSBridge (bridge.js) whose
// answers check each signature with the simulator, against the URL WeChat checks: on iOS the URL
// the document was loaded with, on Android (and WeCom) the current one, after the page's
// history-mode navigation. The mini-program entry runs in node with a stubbed `wx`.
//
// Env: API (the gateway), SIM (the simulator), H5 (where examples/h5 is served), SHOT (PNG path),
// EXAMPLES (examples/, its node_modules installed), WEB (clients/web, built), WECOM_CORP and
// WECOM_AGENT (a registered WeCom agent whose origin is H5's), MINI_APPID (a registered mini program).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const { API, SIM, H5, SHOT, EXAMPLES, WEB, WECOM_CORP, WECOM_AGENT, MINI_APPID } = process.env;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const JWEIXIN = readFileSync(`${EXAMPLES}/node_modules/jweixin-module/lib/index.js`, "utf8");
const BRIDGE = fileURLToPath(new URL("./bridge.js", import.meta.url));

const UA = {
  ios: "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
  android: "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/1234 MicroMessenger/8.0.47.2560(0x28002F36) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
  // WeCom from 3.0.24 on: agentConfig alone; before: wx.config (preVerifyJSAPI) and agentConfig.
  wecom: "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 wxwork/4.1.20 MicroMessenger/7.0.1 NetType/WIFI Language/zh ColorScheme/Light",
  wecomOld: "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/3.0.16 MicroMessenger/7.0.1 Language/zh ColorScheme/Light",
};

async function sim(path, body) {
  const r = await fetch(SIM + path, body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  return r.json();
}

const statusOf = async (code) =>
  (await sim("/__sim/invoices")).find((i) => i.encrypt_code === code).card.user_info.reimburse_status;

const SEED = "O/mPnGTpBu22a1szmK2ogzhFPBh9eYzv2p70L8yzyykBoTdEGnOi8TSuvAUzX8XrOHONZv9BQ5sPsgyjLQjJMCy433SEqFIQys8K/CgLWKRMh42topKL2kjiQeB0IIwo";
const TAXI = "SIMencryptCodeTaxi01+/=";
const SHUDIAN = "SIMencryptCodeShuDian01+/=";
const fixture = JSON.parse(readFileSync(new URL("../fixtures/invoices.json", import.meta.url), "utf8"));
// Start from the fixture's invoices (earlier runs may have locked or closed some); `owners` moves
// some to a registered app (the app whose user picked them).
async function resetInvoices(owners = {}) {
  const invoices = fixture.map((i) => (owners[i.encrypt_code] ? { ...i, app: owners[i.encrypt_code] } : i));
  await fetch(SIM + "/__sim/invoices", { method: "POST", body: JSON.stringify(invoices) });
}
const cardOf = (code) => fixture.find((i) => i.encrypt_code === code).card.card_id;
const picked = (codes) => codes.map((code) => ({ card_id: cardOf(code), encrypt_code: code, app_id: "wx_issuer_app" }));

// WeChat's native side: each signature checked with the simulator against the URL `rule` says
// WeChat checks. `choose` is what chooseInvoice hands the page. Verdicts are kept in `log`.
function nativeSide(rule, choose, log) {
  return async (call) => {
    const a = call.args ?? {};
    const page = rule === "ios" ? call.initialHref : call.href;
    if (call.name === "preVerifyJSAPI") {
      const { valid } = await sim("/__sim/verify/jsapi", { url: page, noncestr: a.verifyNonceStr,
        timestamp: Number(a.verifyTimestamp), signature: a.verifySignature });
      log.push({ name: call.name, valid, url: page.split("#")[0] });
      return { err_msg: valid ? "preVerifyJSAPI:ok" : "config:invalid signature" };
    }
    if (call.name === "agentConfig") {
      const { valid } = await sim("/__sim/verify/agent_config", { corpid: a.corpid, agentid: a.agentid, url: call.href,
        noncestr: a.nonceStr, timestamp: Number(a.timestamp), signature: a.signature });
      log.push({ name: call.name, valid, url: call.href.split("#")[0], agentid: a.agentid });
      return { err_msg: valid ? "agentConfig:ok" : "agentConfig:invalid signature" };
    }
    if (call.name === "chooseInvoice") {
      const { valid } = await sim("/__sim/verify/card_sign", { appid: a.verifyAppId, timestamp: Number(a.timestamp),
        nonce_str: a.nonceStr, sign_type: a.signType, card_sign: a.cardSign });
      log.push({ name: call.name, valid });
      return valid ? { err_msg: "choose_invoice:ok", choose_invoice_info: choose } : { err_msg: "choose_invoice:fail" };
    }
    return null;
  };
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
let passed = 0;
const check = (name) => { passed++; console.log(`ok ${passed} - ${name}`); };

// A page of `file` in a client whose user agent is `ua`, checking signatures by `rule`.
async function open(file, { ua, rule, choose, query = "" }) {
  const context = await browser.newContext({ userAgent: ua, viewport: { width: 1100, height: 600 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  const log = [];
  const signed = [];
  const requested = [];
  page.on("request", (r) => {
    requested.push(r.url());
    if (r.url().startsWith(`${API}/core/r/api/weChat/getToken`)) signed.push(new URL(r.url()).searchParams.get("url"));
  });
  await page.route("https://res.wx.qq.com/open/js/jweixin-1.6.0.js", (r) =>
    r.fulfill({ contentType: "application/javascript", body: JWEIXIN }));
  await page.route("https://open.weixin.qq.com/**", (r) => r.fulfill({ status: 204, body: "" }));
  await page.exposeFunction("__bridgeHandler", nativeSide(rule, choose, log));
  await page.addInitScript({ path: BRIDGE });
  await page.goto(`${H5}/${file}${query}`);
  // The single-page app's navigation (history mode) to the claim, then the JS-SDK's set-up.
  await page.click("#open");
  await page.waitForSelector("#choose:not([disabled])", { timeout: 15000 });
  return { page, context, log, signed, requested };
}

const LANDING = `${H5}/index.html?from=menu`;
const CLAIM = `${H5}/claims/7?tab=invoices`;

try {
  // 1. iOS: WeChat checks the landing URL; configure signs it, once.
  await resetInvoices();
  const chooseInfo = JSON.stringify(picked([SEED, SHUDIAN, TAXI]));
  const query = `?api=${encodeURIComponent("https://evil.example.com")}&from=menu#/list`;
  const ios = await open("index.html", { ua: UA.ios, rule: "ios", choose: chooseInfo, query });
  const landing = `${H5}/index.html${query.split("#")[0]}`;
  assert.equal(ios.page.url(), `${CLAIM}#list`, "the page moved by history navigation");
  assert.deepEqual(ios.signed, [landing], "one getToken, for the landing URL");
  assert.deepEqual(ios.log, [{ name: "preVerifyJSAPI", valid: true, url: landing }]);
  // The gateway comes from the deployed config.js; a crafted `?api=` in the link is ignored.
  assert.ok(!ios.requested.some((u) => new URL(u).hostname === "evil.example.com"), ios.requested.join("\n"));
  check("Official Account page, WeChat on iOS: wx.config signed for the landing URL after a history navigation (jweixin's preVerifyJSAPI valid at the simulator)");

  await ios.page.click("#choose");
  await ios.page.waitForSelector("#invoices tbody tr");
  assert.deepEqual(ios.log.at(-1), { name: "chooseInvoice", valid: true });
  const rows = await ios.page.$$eval("#invoices tbody tr", (trs) =>
    trs.map((tr) => [...tr.children].slice(0, 7).map((td) => td.textContent)));
  assert.deepEqual(rows, [
    ["上海汉得融晶信息科技有限公司", "希杰福味园（上海）餐饮管理有限公司", "031001900111", "2019-04-05", "41.00", "2.32", "未锁定"],
    ["上海汉得融晶信息科技有限公司", "希杰福味园（上海）餐饮管理有限公司", "25312000000012345678", "2019-04-05", "120.00", "6.79", "未锁定"],
    ["上海汉得融晶信息科技有限公司", "上海强生出租汽车有限公司", "031001900200", "2019-04-05", "56.00", "1.63", "未锁定"],
  ]);
  check("chooseInvoice's cardSign valid; the batch read and shown in the order picked (amounts in yuan, dates in UTC+8)");

  // Lock the taxi invoice: the table and WeChat (the simulator) agree.
  await ios.page.click("#invoices tbody tr:nth-child(3) button.set-lock");
  await ios.page.waitForFunction(() =>
    document.querySelector("#invoices tbody tr:nth-child(3) td.status").textContent === "已锁定");
  assert.equal(await statusOf(TAXI), "INVOICE_REIMBURSE_LOCK");
  check("lock under the page's claim: the simulator holds the invoice locked");

  // Closing an invoice that is not locked: WeChat's 72039, shown with the spec's hint.
  await ios.page.click("#invoices tbody tr:nth-child(1) button.set-closure");
  await ios.page.waitForSelector("#message.error");
  assert.match(await ios.page.textContent("#message"), /订单未被锁定（72039）：invoice must be lock first/);
  assert.equal(await statusOf(SEED), "INVOICE_REIMBURSE_INIT");
  check("a refusal is a typed error: WeChat's errcode and errmsg with the spec's hint");

  await ios.page.click("#invoices tbody tr:nth-child(3) button.set-closure");
  await ios.page.waitForFunction(() =>
    document.querySelector("#invoices tbody tr:nth-child(3) td.status").textContent === "已核销");
  assert.equal(await statusOf(TAXI), "INVOICE_REIMBURSE_CLOSURE");
  check("close the locked invoice under the same claim");
  // Leave the error visible in the screenshot.
  await ios.page.click("#invoices tbody tr:nth-child(1) button.set-closure");
  await ios.page.waitForSelector("#message.error");
  await ios.page.screenshot({ path: SHOT, fullPage: true });
  await ios.context.close();

  // 2. Android: WeChat checks the current URL; configure signs it, once.
  const android = await open("index.html", { ua: UA.android, rule: "android", choose: chooseInfo, query: "?from=menu" });
  assert.deepEqual(android.signed, [CLAIM], "one getToken, for the current URL without its fragment");
  assert.deepEqual(android.log, [{ name: "preVerifyJSAPI", valid: true, url: CLAIM }]);
  await android.context.close();
  check("Official Account page, WeChat on Android: wx.config signed for the current URL after a history navigation");

  // 3. A client that says iOS but checks the current URL: "invalid signature", the other URL once.
  const odd = await open("index.html", { ua: UA.ios, rule: "android", choose: chooseInfo, query: "?from=menu" });
  assert.deepEqual(odd.signed, [LANDING, CLAIM], "the landing URL, then the current one");
  assert.deepEqual(odd.log.map((l) => l.valid), [false, true]);
  await odd.context.close();
  check("invalid signature: configure retries once with the other URL, and WeChat accepts it");

  // 4. A batch WeChat answers short: each answer paired by its encrypt_code, one reported missing.
  await resetInvoices();
  const shortInfo = JSON.stringify([
    { card_id: cardOf(SEED), encrypt_code: "SIMnoSuchInvoice+/=", app_id: "wx_issuer_app" },
    { card_id: cardOf(SHUDIAN), encrypt_code: SHUDIAN, app_id: "wx_issuer_app" },
  ]);
  const short = await open("index.html", { ua: UA.android, rule: "android", choose: shortInfo, query: "?from=menu" });
  await short.page.click("#choose");
  await short.page.waitForSelector("#invoices tbody tr");
  const numbers = await short.page.$$eval("#invoices tbody tr", (trs) => trs.map((tr) => tr.children[2].textContent));
  assert.deepEqual(numbers, ["25312000000012345678"]);
  assert.match(await short.page.textContent("#message"), /1 张未能读取/);
  await short.page.click("#invoices tbody tr:nth-child(1) button.set-lock");
  await short.page.waitForFunction(() =>
    document.querySelector("#invoices tbody tr:nth-child(1) td.status").textContent === "已锁定");
  assert.equal(await statusOf(SHUDIAN), "INVOICE_REIMBURSE_LOCK");
  await short.context.close();
  check("a short batch: paired by encrypt_code, the missing one reported, the right one locked");

  // 5. WeCom (current clients): ww.register's agentConfig, signed for the current URL.
  const agent = `${WECOM_CORP}#${WECOM_AGENT}`;
  await resetInvoices({ [SEED]: agent, [TAXI]: agent });
  const wecomInfo = picked([SEED, TAXI]); // WeCom hands over an array
  const wecom = await open("wecom.html", { ua: UA.wecom, rule: "wecom", choose: wecomInfo });
  const wecomClaim = `${H5}/claims/7?tab=invoices`;
  await wecom.page.click("#choose");
  await wecom.page.waitForSelector("#invoices tbody tr");
  assert.deepEqual(wecom.signed, [wecomClaim], "one getToken, for the current URL");
  assert.deepEqual(wecom.log, [
    { name: "agentConfig", valid: true, url: wecomClaim, agentid: WECOM_AGENT },
    { name: "chooseInvoice", valid: true },
  ]);
  await wecom.page.click("#invoices tbody tr:nth-child(2) button.set-lock");
  await wecom.page.waitForFunction(() =>
    document.querySelector("#invoices tbody tr:nth-child(2) td.status").textContent === "已锁定");
  assert.equal(await statusOf(TAXI), "INVOICE_REIMBURSE_LOCK");
  await wecom.context.close();
  check("WeCom page (@wecom/jssdk, wxwork 4.1): agentConfig valid for the agent, cardSign valid with the corpid, the agent's invoice locked");

  // 6. WeCom before 3.0.24: wx.config (the corp's jsapi ticket) and agentConfig, both valid.
  const old = await open("wecom.html", { ua: UA.wecomOld, rule: "wecom", choose: wecomInfo });
  await old.page.click("#choose");
  await old.page.waitForSelector("#invoices tbody tr");
  assert.deepEqual(old.log.map((l) => [l.name, l.valid]).sort(), [
    ["agentConfig", true], ["chooseInvoice", true], ["preVerifyJSAPI", true],
  ]);
  await old.context.close();
  check("WeCom page, wxwork 3.0: the corp's config and the agent's agentConfig both valid");

  // 7. The mini-program entry, in node with a stubbed `wx` (invoiceInfo as a JSON string,
  // camelCase keys, as mini programs hand it over), against the gateway for the mini program.
  await resetInvoices({ [SHUDIAN]: MINI_APPID });
  const mini = await import(`${WEB}/dist/mini.js`);
  const wx = { chooseInvoice: ({ success }) => success({ errMsg: "chooseInvoice:ok",
    invoiceInfo: JSON.stringify([{ cardId: cardOf(SHUDIAN), encryptCode: SHUDIAN, appId: "wx_issuer_app" }]) }) };
  const api = mini.createClient({ api: API, appid: MINI_APPID });
  await api.getToken();
  const chosen = await mini.chooseInvoices(wx);
  const { invoices, missing } = await api.getInvoices(chosen);
  assert.deepEqual([invoices.length, missing.length], [1, 0]);
  assert.equal(invoices[0].fullyDigital, true);
  assert.equal(invoices[0].amount, "120.00");
  const ref = { card_id: chosen[0].card_id, encrypt_code: SHUDIAN };
  await api.lock(`mini-${Date.now()}`, { openid: invoices[0].item.openid }, [ref]);
  assert.equal(await statusOf(SHUDIAN), "INVOICE_REIMBURSE_LOCK");
  check("mini-program entry: invoiceInfo normalised, the 数电 invoice read and locked with the mini program's token");

  console.log(`browser: ${passed} passed, screenshot ${SHOT}`);
} finally {
  await browser.close();
}
