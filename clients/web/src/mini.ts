// @wxinvoice/web/mini: chooseInvoice in a mini program (no signature), its result normalised.
import type { Chosen } from "./index.js";
import { normalizeChosen } from "./index.js";

export { createClient, normalizeChosen, pair, yuan, beijingDate, isFullyDigital, WxInvoiceError } from "./index.js";

/** The part of a mini program's `wx` this uses. */
export interface MiniWx {
  chooseInvoice(args: { success(res: Record<string, unknown>): void; fail(e: { errMsg?: string }): void }): void;
}

/** What `wx.request` is given and answers (the part `requestFetch` uses). */
export interface MiniRequest {
  request(args: {
    url: string;
    method: string;
    header: Record<string, string>;
    data?: string;
    dataType: string;
    responseType: string;
    success(res: { statusCode: number; data: unknown; header: Record<string, string> }): void;
    fail(e: { errMsg?: string }): void;
  }): void;
}

/** `fetch` over `wx.request` (mini programs have no fetch), for `createClient({fetch})`: the
 * answer as text, its headers looked up without regard to case. */
export function requestFetch(wx: MiniRequest): typeof fetch {
  const doFetch = (input: string | URL | Request, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      wx.request({
        url: String(input),
        method: init.method ?? "GET",
        header: (init.headers ?? {}) as Record<string, string>,
        data: init.body === undefined || init.body === null ? undefined : String(init.body),
        dataType: "text",
        responseType: "text",
        success: (res) => {
          const text = typeof res.data === "string" ? res.data : JSON.stringify(res.data);
          const headers = Object.fromEntries(Object.entries(res.header ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
          resolve({
            ok: res.statusCode >= 200 && res.statusCode < 300,
            status: res.statusCode,
            statusText: "",
            headers: { get: (k: string) => headers[k.toLowerCase()] ?? null },
            json: async () => JSON.parse(text),
            text: async () => text,
          } as unknown as Response);
        },
        fail: (e) => reject(new TypeError(`wx.request: ${e.errMsg ?? "failed"}`)),
      });
    });
  return doFetch as typeof fetch;
}

export function chooseInvoices(wx: MiniWx): Promise<Chosen[]> {
  return new Promise((resolve, reject) => {
    wx.chooseInvoice({
      success: (res) => resolve(normalizeChosen(res)),
      fail: (e) => reject(new Error(`chooseInvoice: ${e.errMsg ?? "failed"}`)),
    });
  });
}
