// The example pages' shared part: the invoices the user picked, read with getInvoiceBatch and
// paired by encrypt_code, shown in a table, and locked / unlocked / closed under one expense
// claim. Each page (oa.ts, wecom.ts) brings its own way of signing the page and choosing.
import { createClient, WxInvoiceError } from "@wxinvoice/web";
import type { Chosen, Invoice, ReimburseStatus } from "@wxinvoice/web";

export interface Settings {
  api?: string;
  bearer?: (() => string) | null;
  wecom?: { appid?: string; agentid?: string };
}

declare global {
  interface Window {
    WXINVOICE?: Settings;
  }
}

const STATUS: Record<string, string> = {
  INVOICE_REIMBURSE_INIT: "未锁定",
  INVOICE_REIMBURSE_LOCK: "已锁定",
  INVOICE_REIMBURSE_CLOSURE: "已核销",
  INVOICE_REIMBURSE_CANCEL: "已冲红",
};

const ACTIONS: [string, ReimburseStatus][] = [
  ["锁定", "INVOICE_REIMBURSE_LOCK"],
  ["解锁", "INVOICE_REIMBURSE_INIT"],
  ["核销", "INVOICE_REIMBURSE_CLOSURE"],
];

const $ = (id: string) => document.getElementById(id) as HTMLElement;

export function say(text: string, ok: boolean): void {
  const m = $("message");
  m.textContent = text;
  m.className = ok ? "ok" : "error";
}

/** A refusal as the user reads it: the spec's hint (or the gateway's), the errcode, WeChat's text. */
export function failure(e: unknown): string {
  if (e instanceof WxInvoiceError) {
    const hint = e.hint ?? e.gatewayHint;
    return `${hint ? `${hint}（${e.errcode}）` : `错误 ${e.errcode}`}：${e.errmsg}`;
  }
  return `错误：${e instanceof Error ? e.message : String(e)}`;
}

/** The client for this page's app (the WeCom page names its agent). */
export function client(wecom: boolean) {
  const s = window.WXINVOICE ?? {};
  const app = wecom ? s.wecom ?? {} : {};
  return createClient({
    api: s.api || location.origin,
    appid: app.appid || undefined,
    agentid: app.agentid || undefined,
    bearer: typeof s.bearer === "function" ? s.bearer : undefined,
  });
}

/** One expense claim per visit of the page: its status changes share the claim_id. */
function claimId(): string {
  const key = "wxinvoice-example:claim";
  let id = sessionStorage.getItem(key);
  if (!id) {
    id = `EX-${Date.now().toString(36)}`;
    sessionStorage.setItem(key, id);
  }
  return id;
}

/** Reads what was picked and shows it, with the status buttons. */
export async function show(api: ReturnType<typeof client>, picked: Chosen[]): Promise<void> {
  const { invoices, missing } = await api.getInvoices(picked);
  const rows = invoices;
  const render = () => {
    const body = $("invoices").querySelector("tbody") as HTMLElement;
    body.innerHTML = "";
    rows.forEach((inv: Invoice) => {
      const u = inv.item.user_info ?? {};
      const tr = document.createElement("tr");
      const cells = [u.title, inv.item.payee, u.billing_no, inv.billingDate, inv.amount,
        u.tax === undefined ? "" : (u.tax / 100).toFixed(2), STATUS[u.reimburse_status ?? ""] ?? u.reimburse_status];
      cells.forEach((text, col) => {
        const td = document.createElement("td");
        td.textContent = text == null ? "" : String(text);
        if (col === 4 || col === 5) td.className = "amount";
        if (col === 6) td.className = "status";
        tr.appendChild(td);
      });
      const actions = document.createElement("td");
      for (const [label, status] of ACTIONS) {
        const b = document.createElement("button");
        b.textContent = label;
        b.className = `set-${status.slice(18).toLowerCase()}`;
        b.onclick = () => setStatus(inv, status);
        actions.appendChild(b);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    });
    $("invoices").hidden = rows.length === 0;
  };
  const setStatus = async (inv: Invoice, status: ReimburseStatus) => {
    const ref = { card_id: inv.item.card_id, encrypt_code: inv.item.encrypt_code };
    const owner = { openid: inv.item.openid ?? "" };
    const change = status === "INVOICE_REIMBURSE_LOCK" ? api.lock
      : status === "INVOICE_REIMBURSE_INIT" ? api.unlock : api.close;
    try {
      await change(claimId(), owner, [ref]);
      if (inv.item.user_info) inv.item.user_info.reimburse_status = status;
      render();
      say(`已更新：${STATUS[status]}`, true);
    } catch (e) {
      say(failure(e), false);
    }
  };
  render();
  say(`共 ${rows.length} 张发票${missing.length ? `，${missing.length} 张未能读取` : ""}`, missing.length === 0);
}

/** The page's views: the start view, and the claim's invoice view reached through the router
 * (history mode: the URL changes without a load, as in a single-page app). */
export function route(open: () => Promise<(() => Promise<void>) | undefined>): void {
  $("open").onclick = async () => {
    history.pushState({}, "", "claims/7?tab=invoices#list");
    $("start").hidden = true;
    $("claim").hidden = false;
    try {
      const choose = await open();
      if (!choose) return;
      $("state").textContent = "已就绪";
      const button = $("choose") as HTMLButtonElement;
      button.disabled = false;
      button.onclick = () => choose().catch((e) => say(failure(e), false));
    } catch (e) {
      say(failure(e), false);
    }
  };
}
