// The Official Account page: wx.config through @wxinvoice/web's configure (the URL WeChat checks,
// retried once with the other on "invalid signature"), chooseInvoice with the card_sign, then the
// shared invoice view. `wx` is the official jweixin, loaded by index.html.
import { chooseInvoices, configure } from "@wxinvoice/web";
import type { Jweixin } from "@wxinvoice/web";
import { client, route, show } from "./ui";

declare const wx: Jweixin;

const api = client(false);
route(async () => {
  const signed = await configure(wx, api);
  return async () => show(api, await chooseInvoices(wx, signed));
});
