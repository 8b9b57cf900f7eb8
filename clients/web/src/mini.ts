// @wxinvoice/web/mini: chooseInvoice in a mini program (no signature), its result normalised.
import type { Chosen } from "./index.js";
import { normalizeChosen } from "./index.js";

export { createClient, normalizeChosen, pair, yuan, beijingDate, isFullyDigital, WxInvoiceError } from "./index.js";

/** The part of a mini program's `wx` this uses. */
export interface MiniWx {
  chooseInvoice(args: { success(res: Record<string, unknown>): void; fail(e: { errMsg?: string }): void }): void;
}

export function chooseInvoices(wx: MiniWx): Promise<Chosen[]> {
  return new Promise((resolve, reject) => {
    wx.chooseInvoice({
      success: (res) => resolve(normalizeChosen(res)),
      fail: (e) => reject(new Error(`chooseInvoice: ${e.errMsg ?? "failed"}`)),
    });
  });
}
