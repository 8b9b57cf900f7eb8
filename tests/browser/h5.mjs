// Drives the example page (examples/h5) in Debian's headless Chromium against the local stack:
// the JS-SDK is stubbed (it only runs inside WeChat) so that chooseInvoice returns simulator
// invoices; what the page signs is checked with the simulator, as WeChat would check it.
//
// Env: API (the gateway), SIM (the simulator), H5 (where examples/h5 is served), SHOT (PNG path).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const { API, SIM, H5, SHOT } = process.env;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

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
// Start from the fixture's invoices (earlier runs may have locked or closed some).
const fixture = readFileSync(new URL("../fixtures/invoices.json", import.meta.url), "utf8");
await fetch(SIM + "/__sim/invoices", { method: "POST", body: fixture });
const invoices = await sim("/__sim/invoices");
const picked = [SEED, SHUDIAN, TAXI].map((code) => invoices.find((i) => i.encrypt_code === code));
// What WeChat hands an Official Account page: a JSON string of {card_id, encrypt_code, app_id}.
const chooseInfo = JSON.stringify(
  picked.map((i) => ({ card_id: i.card.card_id, encrypt_code: i.encrypt_code, app_id: "wx_issuer_app" })),
);

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
let passed = 0;

// A page whose (stubbed) JS-SDK answers chooseInvoice with `info`.
async function openPage(info) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 560 } });
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.route("https://res.wx.qq.com/**", (r) => r.fulfill({ contentType: "application/javascript", body: "" }));
  await page.addInitScript((info) => {
    window.__wx = {};
    window.wx = {
      config(c) { window.__wx.config = c; },
      ready(cb) { setTimeout(cb, 0); },
      error() {},
      invoke(name, args, cb) {
        window.__wx.invoke = { name, args };
        cb({ err_msg: "choose_invoice:ok", choose_invoice_info: info });
      },
    };
  }, info);
  return page;
}

try {
  const page = await openPage(chooseInfo);

  // The gateway comes from the deployed config.js; a crafted `?api=` in the link is ignored.
  const requested = [];
  page.on("request", (r) => requested.push(r.url()));
  const url = `${H5}/index.html?api=${encodeURIComponent("https://evil.example.com")}&from=menu#/list`;
  await page.goto(url);
  // Enabled only once getToken answered (cross-origin: CORS must allow this page) and wx.config ran.
  await page.waitForSelector("#choose:not([disabled])", { timeout: 15000 });
  const conf = await page.evaluate(() => window.__wx.config);
  assert.equal(conf.beta, true);
  assert.deepEqual(conf.jsApiList, ["chooseInvoice"]);
  const jsapi = await sim("/__sim/verify/jsapi", {
    url: page.url(), noncestr: conf.nonceStr, timestamp: conf.timestamp, signature: conf.signature,
  });
  assert.equal(jsapi.valid, true, "WeChat accepts wx.config for this page");
  assert.ok(requested.some((u) => u.startsWith(`${API}/core/r/api/weChat/getToken`)), requested.join("\n"));
  assert.ok(!requested.some((u) => new URL(u).hostname === "evil.example.com"), requested.join("\n"));
  passed++;

  await page.click("#choose");
  await page.waitForSelector("#invoices tbody tr");
  const invoke = await page.evaluate(() => window.__wx.invoke);
  assert.equal(invoke.name, "chooseInvoice");
  const card = await sim("/__sim/verify/card_sign", {
    appid: conf.appId, timestamp: invoke.args.timestamp, nonce_str: invoke.args.nonceStr,
    sign_type: invoke.args.signType, card_sign: invoke.args.cardSign,
  });
  assert.equal(card.valid, true, "WeChat accepts chooseInvoice's cardSign");
  passed++;

  const rows = await page.$$eval("#invoices tbody tr", (trs) =>
    trs.map((tr) => [...tr.children].slice(0, 7).map((td) => td.textContent)));
  assert.deepEqual(rows, [
    ["上海汉得融晶信息科技有限公司", "希杰福味园（上海）餐饮管理有限公司", "031001900111", "2019-04-05", "41.00", "2.32", "未锁定"],
    ["上海汉得融晶信息科技有限公司", "希杰福味园（上海）餐饮管理有限公司", "25312000000012345678", "2019-04-05", "120.00", "6.79", "未锁定"],
    ["上海汉得融晶信息科技有限公司", "上海强生出租汽车有限公司", "031001900200", "2019-04-05", "56.00", "1.63", "未锁定"],
  ]);
  passed++;

  // Lock the taxi invoice: the table and WeChat (the simulator) agree.
  await page.click("#invoices tbody tr:nth-child(3) button.set-lock");
  await page.waitForFunction(() =>
    document.querySelector("#invoices tbody tr:nth-child(3) td.status").textContent === "已锁定");
  assert.equal(await statusOf(TAXI), "INVOICE_REIMBURSE_LOCK");
  passed++;

  // Closing an invoice that is not locked: WeChat's 72039, shown with the spec's hint.
  await page.click("#invoices tbody tr:nth-child(1) button.set-closure");
  await page.waitForSelector("#message.error");
  const message = await page.textContent("#message");
  assert.match(message, /订单未被锁定（72039）：invoice must be lock first/);
  assert.equal(await statusOf(SEED), "INVOICE_REIMBURSE_INIT");
  passed++;

  // Closing the locked one works.
  await page.click("#invoices tbody tr:nth-child(3) button.set-closure");
  await page.waitForFunction(() =>
    document.querySelector("#invoices tbody tr:nth-child(3) td.status").textContent === "已核销");
  assert.equal(await statusOf(TAXI), "INVOICE_REIMBURSE_CLOSURE");
  passed++;

  // Leave the error visible in the screenshot.
  await page.click("#invoices tbody tr:nth-child(1) button.set-closure");
  await page.waitForSelector("#message.error");
  await page.screenshot({ path: SHOT, fullPage: true });
  console.log(`browser: example page ok, screenshot ${SHOT}`);

  // A batch WeChat answers short (one invoice it cannot find, next to one of the same card_id):
  // the page pairs each answer by its encrypt_code, says one is missing, and locks the right one.
  await fetch(SIM + "/__sim/invoices", { method: "POST", body: fixture });
  const shortInfo = JSON.stringify([
    { card_id: picked[0].card.card_id, encrypt_code: "SIMnoSuchInvoice+/=", app_id: "wx_issuer_app" },
    { card_id: picked[1].card.card_id, encrypt_code: SHUDIAN, app_id: "wx_issuer_app" },
  ]);
  const short = await openPage(shortInfo);
  await short.goto(`${H5}/index.html`);
  await short.waitForSelector("#choose:not([disabled])", { timeout: 15000 });
  await short.click("#choose");
  await short.waitForSelector("#invoices tbody tr");
  const numbers = await short.$$eval("#invoices tbody tr", (trs) => trs.map((tr) => tr.children[2].textContent));
  assert.deepEqual(numbers, ["25312000000012345678"]);
  assert.match(await short.textContent("#message"), /1 张未能读取/);
  await short.click("#invoices tbody tr:nth-child(1) button.set-lock");
  await short.waitForFunction(() =>
    document.querySelector("#invoices tbody tr:nth-child(1) td.status").textContent === "已锁定");
  assert.equal(await statusOf(SHUDIAN), "INVOICE_REIMBURSE_LOCK");
  assert.equal(await statusOf(SEED), "INVOICE_REIMBURSE_INIT");
  passed++;
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, 0 failed`);
