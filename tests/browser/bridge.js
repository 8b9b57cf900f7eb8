// A recording WeixinJSBridge: the native side of WeChat and WeCom that the official jweixin and
// @wecom/jssdk talk to, installed before the page's scripts (page.addInitScript). Each call is
// recorded with the URL the document was loaded with (`initialHref`, what WeChat on iOS checks a
// signature against) and the current one (`href`, what WeChat on Android and WeCom check), and
// answered by the test (`window.__bridgeHandler`, exposed by Playwright), which checks the
// signatures with the simulator as WeChat would. Calls the test does not answer get WeChat's
// plain ok. Answers are asynchronous, as the native ones are.
(() => {
  const initialHref = location.href;
  const calls = (window.__calls = []);
  const plain = (v) => JSON.parse(JSON.stringify(v === undefined ? null : v)); // drops callbacks
  window.WeixinJSBridge = {
    invoke(name, args, cb) {
      const call = { name, args: plain(args), href: location.href, initialHref };
      calls.push(call);
      (async () => {
        let res = typeof window.__bridgeHandler === "function" ? await window.__bridgeHandler(call) : null;
        if (res == null) res = name === "getNetworkType" ? { err_msg: "network_type:wifi" } : { err_msg: `${name}:ok` };
        setTimeout(() => cb && cb(plain(res)), 0);
      })();
    },
    on() {},
    call() {},
    log() {},
  };
})();
