// @wxinvoice/web: the front end's side of the wxinvoice gateway. Typed calls (types generated from
// the gateway's openapi.yaml into ./schema.ts), the page URL WeChat checks, chooseInvoice results
// normalised, invoices paired by encrypt_code and read, and status changes under an expense claim
// with an Idempotency-Key reused on their retries. No runtime dependency: a thin wrapper on fetch.
import type { components } from "./schema.js";

export type TokenAnswer = components["schemas"]["TokenAnswer"];
export type MiniTokenAnswer = components["schemas"]["MiniTokenAnswer"];
export type InvoiceRef = components["schemas"]["InvoiceRef"];
export type InvoiceItem = components["schemas"]["InvoiceItem"];
export type UserInfo = components["schemas"]["UserInfo"];
export type ReimburseStatus = components["schemas"]["UpdateStatusRequest"]["reimburse_status"];

/** Whose invoices: the openid, or on a WeCom page the member's userid (the gateway converts it). */
export type Owner = { openid: string; userid?: never } | { userid: string; openid?: never };

/** What the user picked in chooseInvoice, normalised (`app_id` as WeChat names it). */
export interface Chosen {
  card_id: string;
  encrypt_code: string;
  app_id?: string;
}

/** The gateway's or WeChat's refusal, as a typed error. */
export class WxInvoiceError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: number,
    readonly errmsg: string,
    /** The spec's Chinese remark for the errcode, when it has one. */
    readonly hint?: string,
    /** The gateway's own Chinese remark, for errcodes the spec lacks. */
    readonly gatewayHint?: string,
    /** API Gateway's request id (`apigw-requestid`), what to quote when reporting. */
    readonly requestId?: string,
  ) {
    super(`${errcode}: ${errmsg}`);
    this.name = "WxInvoiceError";
  }
}

export interface ClientOptions {
  /** The gateway's base URL, e.g. https://api.example.com (no trailing path). */
  api: string;
  /** A registered app of the deployment (and its WeCom agent); none for the deployment's own. */
  appid?: string;
  agentid?: string;
  /** The JWT for the gateway's authorizer, asked before each call (when the authorizer is on). */
  bearer?: () => string | Promise<string>;
  /** Tries of a status change whose answer was lost (network error, 5xx), same Idempotency-Key. */
  retries?: number;
  fetch?: typeof fetch;
}

const PATH = "/core/r/api/weChat";

export function createClient(options: ClientOptions) {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const retries = options.retries ?? 2;
  // The access_token of the last getToken answer, sent as `token` on the invoice calls (the
  // spec's contract); none in hardened mode (EXPOSE_ACCESS_TOKEN=false), where the gateway uses
  // the token it keeps.
  let token: string | undefined;

  function url(endpoint: string, query: Record<string, string | undefined>): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...query, appid: options.appid, agentid: options.agentid })) {
      if (v !== undefined) q.set(k, v);
    }
    return `${options.api}${PATH}/${endpoint}?${q}`;
  }

  async function call<T>(endpoint: string, query: Record<string, string | undefined>, body?: unknown, key?: string): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (key) headers["idempotency-key"] = key;
    if (options.bearer) headers.authorization = `Bearer ${await options.bearer()}`;
    const resp = await doFetch(url(endpoint, query), {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const requestId = resp.headers.get("apigw-requestid") ?? undefined;
    const v = (await resp.json().catch(() => ({}))) as Record<string, unknown>;
    const errcode = typeof v.errcode === "number" ? v.errcode : 0;
    if (!resp.ok || errcode !== 0) {
      throw new WxInvoiceError(resp.status, errcode || -1, String(v.errmsg ?? resp.statusText),
        v.hint as string | undefined, v.gateway_hint as string | undefined, requestId);
    }
    return v as T;
  }

  /** A status change, its Idempotency-Key reused on the retries of a lost answer. */
  async function change(body: components["schemas"]["UpdateStatusRequest"]): Promise<void> {
    const key = newKey();
    for (let attempt = 0; ; attempt++) {
      try {
        await call("updateStatus", { token }, body, key);
        return;
      } catch (e) {
        const lost = !(e instanceof WxInvoiceError) || e.status >= 500;
        if (!lost || attempt >= retries) throw e;
      }
    }
  }

  function statusChange(status: ReimburseStatus) {
    return (claimId: string, owner: Owner, invoices: InvoiceRef[]) =>
      change({ ...owner, reimburse_status: status, claim_id: claimId,
        invoice_list: invoices.map(({ card_id, encrypt_code }) => ({ card_id, encrypt_code })) });
  }

  return {
    /** getToken: the page's signature (and cardSign) for `pageUrl`; `debug` shows what was signed.
     * Its access_token (when the deployment hands it out) goes with the invoice calls after it. */
    async getToken(pageUrl?: string, debug = false): Promise<TokenAnswer | MiniTokenAnswer> {
      const answer = await call<TokenAnswer | MiniTokenAnswer>("getToken", { url: pageUrl, debug: debug ? "1" : undefined });
      token = answer.access_token ?? token;
      return answer;
    },
    /** getInvoiceBatch, paired with what was picked: each picked invoice's item, and the missing. */
    async getInvoices(picked: Chosen[]): Promise<{ invoices: Invoice[]; missing: Chosen[] }> {
      const answer = await call<components["schemas"]["InvoiceBatchResponse"]>("getInvoiceBatch", { token },
        { item_list: picked.map(({ card_id, encrypt_code }) => ({ card_id, encrypt_code })) });
      return pair(picked, answer.item_list);
    },
    lock: statusChange("INVOICE_REIMBURSE_LOCK"),
    unlock: statusChange("INVOICE_REIMBURSE_INIT"),
    close: statusChange("INVOICE_REIMBURSE_CLOSURE"),
  };
}

function newKey(): string {
  const c = globalThis.crypto;
  if (c && "randomUUID" in c) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** An invoice as the batch answered it, with helpers. */
export interface Invoice {
  item: InvoiceItem;
  /** Amount in yuan, two decimals ("12.30"), from fee in fen. */
  amount?: string;
  /** billing_time as a date in Beijing time (UTC+8), YYYY-MM-DD. */
  billingDate?: string;
  /** A fully digital invoice (数电/全电): a 20-digit number and no invoice code. */
  fullyDigital: boolean;
}

export function invoiceOf(item: InvoiceItem): Invoice {
  const info = item.user_info ?? {};
  return {
    item,
    amount: info.fee === undefined ? undefined : yuan(info.fee),
    billingDate: info.billing_time === undefined ? undefined : beijingDate(info.billing_time),
    fullyDigital: isFullyDigital(info),
  };
}

/** Pairs the batch answer with what was picked, by encrypt_code (the gateway names each item's). */
export function pair(picked: Chosen[], items: InvoiceItem[]): { invoices: Invoice[]; missing: Chosen[] } {
  const byCode = new Map(items.map((i) => [i.encrypt_code, i]));
  const invoices: Invoice[] = [];
  const missing: Chosen[] = [];
  for (const p of picked) {
    const item = byCode.get(p.encrypt_code);
    if (!item || item.gateway_missing) missing.push(p);
    else invoices.push(invoiceOf(item));
  }
  return { invoices, missing };
}

/** Fen to yuan, exactly: 1230 → "12.30", -5 → "-0.05". */
export function yuan(fen: number): string {
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(Math.round(fen));
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** Unix seconds as a Beijing-time (UTC+8) date, YYYY-MM-DD. */
export function beijingDate(unixSecs: number): string {
  return new Date((unixSecs + 8 * 3600) * 1000).toISOString().slice(0, 10);
}

/** 数电 (fully digital) invoices carry a 20-digit number in billing_no and no invoice code. */
export function isFullyDigital(info: UserInfo): boolean {
  const no = info.billing_no ?? "";
  const code = info.billing_code ?? "";
  return /^\d{20}$/.test(no) && (code === "" || code === no);
}

/** chooseInvoice's result in any of its forms (invoiceInfo as a JSON string, choose_invoice_info,
 * cardId/encryptCode or card_id/encrypt_code), normalised. */
export function normalizeChosen(result: unknown): Chosen[] {
  const r = (result ?? {}) as Record<string, unknown>;
  let list: unknown = r.invoiceInfo ?? r.choose_invoice_info ?? r.chooseInvoiceInfo ?? r.cardList ?? result;
  if (typeof list === "string") {
    try {
      list = JSON.parse(list);
    } catch {
      return [];
    }
  }
  if (!Array.isArray(list)) return [];
  return list.flatMap((x) => {
    const o = (x ?? {}) as Record<string, unknown>;
    const card_id = o.card_id ?? o.cardId;
    const encrypt_code = o.encrypt_code ?? o.encryptCode;
    const app_id = o.app_id ?? o.appId;
    if (typeof card_id !== "string" || typeof encrypt_code !== "string") return [];
    return [{ card_id, encrypt_code, ...(typeof app_id === "string" ? { app_id } : {}) }];
  });
}

/** The URL WeChat checks a page's signature against: on iOS the URL the page was first loaded
 * with (single-page apps keep it through history navigation), on Android the current one; either
 * without its fragment. `landing` is recorded by `recordLanding()` at first load. */
export function urlToSign(current: string, landing: string | undefined, userAgent: string): string {
  const ios = /iPhone|iPad|iPod/i.test(userAgent);
  const url = ios && landing ? landing : current;
  return url.split("#")[0];
}

const LANDING_KEY = "wxinvoice:landing";

/** Records the URL this document was loaded with, where the browser keeps no navigation entry
 * (call once per page load, before the router moves). */
export function recordLanding(storage: Pick<Storage, "getItem" | "setItem"> = sessionStorage, href = location.href): void {
  storage.setItem(LANDING_KEY, href.split("#")[0]);
}

/** The URL this document was loaded with: the browser's navigation entry (history navigation
 * leaves it), else what `recordLanding` kept. */
export function landing(storage: Pick<Storage, "getItem"> = sessionStorage): string | undefined {
  const entry = globalThis.performance?.getEntriesByType?.("navigation")?.[0]?.name;
  const url = entry || storage.getItem(LANDING_KEY);
  return url ? url.split("#")[0] : undefined;
}

export { configure, chooseInvoices, chooseInvoicesWecom, registerWecom, SignatureError } from "./page.js";
export type { Jweixin, WecomJssdk, WecomRegisterOptions, WecomSignature, ConfigureOptions } from "./page.js";
