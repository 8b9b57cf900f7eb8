// The WeCom page: @wecom/jssdk's ww.register with the corp's config and the agent's agentConfig
// signatures from getToken (registerWecom), ww.chooseInvoice with the card_sign, then the shared
// invoice view.
import * as ww from "@wecom/jssdk";
import { chooseInvoicesWecom, registerWecom } from "@wxinvoice/web";
import type { WecomJssdk } from "@wxinvoice/web";
import { client, route, show } from "./ui";

const sdk: WecomJssdk = ww; // the package needs only register and chooseInvoice
const api = client(true);
route(async () => {
  const signed = await registerWecom(sdk, api);
  return async () => show(api, await chooseInvoicesWecom(sdk, signed, api));
});
