// The page's side of WeChat's JS-SDK: wx.config with the URL WeChat checks (retried once with the
// other URL when WeChat says "invalid signature"), and chooseInvoice on an Official Account page
// or a WeCom page, its result normalised. The SDK objects are passed in (the official jweixin
// `wx`, WeCom's `ww`), so the package loads neither.
import type { Chosen, TokenAnswer, MiniTokenAnswer } from "./index.js";
import { landing, normalizeChosen, urlToSign } from "./index.js";

/** The part of jweixin's `wx` this uses. */
export interface Jweixin {
  config(c: Record<string, unknown>): void;
  ready(f: () => void): void;
  error(f: (e: { errMsg?: string }) => void): void;
  invoke(name: string, args: Record<string, unknown>, cb: (res: Record<string, unknown>) => void): void;
}

/** What `ww.register`'s signature callbacks answer. */
export interface WecomSignature {
  timestamp: number;
  nonceStr: string;
  signature: string;
}

/** The part of `ww.register`'s options this sets. */
export interface WecomRegisterOptions {
  corpId: string;
  agentId: string;
  jsApiList: string[];
  getConfigSignature(url: string): Promise<WecomSignature>;
  getAgentConfigSignature(url: string): Promise<WecomSignature>;
}

/** The part of `@wecom/jssdk`'s `ww` this uses (`import * as ww from "@wecom/jssdk"` fits). */
export interface WecomJssdk {
  register(options: WecomRegisterOptions): unknown;
  chooseInvoice(args: { timestamp: number; nonceStr: string; signType: "SHA1"; cardSign: string }): Promise<unknown>;
}

export interface Signer {
  getToken(pageUrl?: string, debug?: boolean): Promise<TokenAnswer | MiniTokenAnswer>;
}

/** "invalid signature" that trying the other URL did not mend: the URLs tried, and what the
 * gateway signed for the last one (its ticket masked), to compare with the page. */
export class SignatureError extends Error {
  constructor(readonly tried: string[], readonly signed?: string) {
    super(`invalid signature for ${tried.join(" and ")}${signed ? `; signed: ${signed}` : ""}`);
    this.name = "SignatureError";
  }
}

export interface ConfigureOptions {
  jsApiList?: string[];
  /** For tests: the page's current URL, the landing URL, the user agent. */
  href?: string;
  landing?: string;
  userAgent?: string;
}

function asPage(a: TokenAnswer | MiniTokenAnswer): TokenAnswer {
  if (!("signature" in a)) throw new Error("this app signs no pages (a mini program): use @wxinvoice/web/mini");
  return a;
}

function configured(wx: Jweixin, a: TokenAnswer, jsApiList: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    wx.ready(() => resolve(undefined));
    wx.error((e) => resolve(e.errMsg ?? "config failed"));
    // beta: WeChat's documents ask for it with wx.invoke (jweixin 1.6.0 ignores it).
    wx.config({ debug: false, beta: true, appId: a.appid, timestamp: a.timestamp, nonceStr: a.noncestr,
      signature: a.signature, jsApiList });
  });
}

/** wx.config for this page: signs the URL WeChat checks (the landing URL on iOS, the current one
 * elsewhere), and on "invalid signature" the other one once; then gives up with what was signed.
 * Answers the getToken answer that worked (its card_sign opens chooseInvoice). */
export async function configure(wx: Jweixin, gateway: Signer, options: ConfigureOptions = {}): Promise<TokenAnswer> {
  const href = options.href ?? location.href;
  const first = options.landing ?? landing();
  const ua = options.userAgent ?? navigator.userAgent;
  const jsApiList = options.jsApiList ?? ["chooseInvoice"];
  const primary = urlToSign(href, first, ua);
  const other = urlToSign(href, first, /iPhone|iPad|iPod/i.test(ua) ? "Android" : "iPhone");
  const tried: string[] = [];
  for (const url of primary === other ? [primary] : [primary, other]) {
    tried.push(url);
    const answer = asPage(await gateway.getToken(url));
    const failed = await configured(wx, answer, jsApiList);
    if (!failed) return answer;
    if (!/invalid signature/i.test(failed)) throw new Error(`wx.config: ${failed}`);
  }
  const debug = asPage(await gateway.getToken(tried[tried.length - 1], true)).debug;
  throw new SignatureError(tried, debug?.signed);
}

/** chooseInvoice on an Official Account page, signed with the answer's card_sign. */
export function chooseInvoices(wx: Jweixin, a: TokenAnswer): Promise<Chosen[]> {
  return new Promise((resolve, reject) => {
    wx.invoke("chooseInvoice", { timestamp: a.timestamp, nonceStr: a.noncestr, signType: a.sign_type ?? "SHA1",
      cardSign: a.card_sign }, (res) => {
      const msg = String(res.err_msg ?? res.errMsg ?? "");
      if (/:ok$/.test(msg)) resolve(normalizeChosen(res));
      else reject(new Error(`chooseInvoice: ${msg || "failed"}`));
    });
  });
}

/** `ww.register` on a WeCom page: the corp's config and the agent's agentConfig, each signed by
 * the gateway for the URL `ww` asks for (WeCom checks the current URL, fragment dropped; `ww`
 * asks again after a history navigation). One getToken per URL. Answers the getToken answer for
 * this page (its card_sign opens chooseInvoice). The app must have an agent (`agent_config` in
 * getToken's answer: WECHAT_AGENT_ID, or a registered WeCom agent). */
export async function registerWecom(ww: WecomJssdk, gateway: Signer, options: ConfigureOptions = {}): Promise<TokenAnswer> {
  const signed = new Map<string, Promise<TokenAnswer>>();
  const sign = (url: string): Promise<TokenAnswer> => {
    const page = url.split("#")[0];
    if (!signed.has(page)) signed.set(page, gateway.getToken(page).then(asPage));
    return signed.get(page) as Promise<TokenAnswer>;
  };
  const first = await sign(options.href ?? location.href);
  const agent = first.agent_config;
  if (!agent) throw new Error("getToken answered no agent_config: give the app its WeCom agent (WECHAT_AGENT_ID, or register the agent)");
  const config = async (url: string): Promise<WecomSignature> => {
    const a = await sign(url);
    return { timestamp: a.timestamp, nonceStr: a.noncestr, signature: a.signature };
  };
  const agentConfig = async (url: string): Promise<WecomSignature> => {
    const a = await sign(url);
    return { timestamp: a.timestamp, nonceStr: a.noncestr, signature: a.agent_config?.signature ?? "" };
  };
  ww.register({ corpId: first.appid, agentId: agent.agentid, jsApiList: options.jsApiList ?? ["chooseInvoice"],
    getConfigSignature: config, getAgentConfigSignature: agentConfig });
  return first;
}

/** chooseInvoice on a WeCom page (`ww` of @wecom/jssdk, registered by `registerWecom`). `ww`
 * rejects with a plain result object; it becomes an Error here, a SignatureError (with what the
 * gateway signed for this page) when WeCom refused a signature. */
export async function chooseInvoicesWecom(ww: WecomJssdk, a: TokenAnswer, gateway?: Signer): Promise<Chosen[]> {
  let res: unknown;
  try {
    res = await ww.chooseInvoice({ timestamp: a.timestamp, nonceStr: a.noncestr,
      signType: "SHA1", cardSign: a.card_sign ?? "" });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String((e as Record<string, unknown>)?.errMsg ?? e);
    if (/invalid ?signature/i.test(msg)) {
      const debug = gateway ? asPage(await gateway.getToken(a.url, true)).debug : undefined;
      throw new SignatureError([a.url], debug?.agent_signed ?? debug?.signed);
    }
    throw new Error(`chooseInvoice: ${msg}`);
  }
  return normalizeChosen(res);
}
