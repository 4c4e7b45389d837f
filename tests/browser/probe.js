// Installed in every page before the page's own scripts run (Page.addScriptToEvaluateOnNewDocument), so a test
// can see what the page receives, reach the page's WebSocket, and hold back chosen messages from the page.
(() => {
  const probe = {
    sockets: [],
    received: [],
    // Rules such as {"type": "ring.stopped"}: a message whose fields equal every field of a rule never reaches
    // the page's own handlers; it is kept in `held` instead.
    holding: [],
    held: [],
    // outerHTML of every `.ring` element ever added to the document, so a test can tell a bar never appeared.
    ringsAdded: [],
    // Uncaught errors and unhandled rejections of the page's scripts (the ringtone among them).
    errors: [],
    // Rules for what the page sends: a frame whose fields equal every field of a rule never leaves the page (as
    // if the gateway had not taken it); it is kept in `dropped` instead.
    dropping: [],
    dropped: [],
    // How each of the page's sockets closed: {code, reason}.
    closes: [],
    // Rules {match, set}: a message whose fields equal every field of `match` reaches the page (and `received`)
    // with the fields of `set` in place, as if the gateway had sent them so.
    rewriting: [],
  };
  window.__switchboardProbe = probe;
  window.addEventListener("error", (event) => probe.errors.push(String(event.message)));
  window.addEventListener("unhandledrejection", (event) => probe.errors.push(String(event.reason)));

  const matches = (message, rule) => Object.entries(rule).every(([key, value]) => message[key] === value);

  const NativeWebSocket = window.WebSocket;
  class ProbedWebSocket extends NativeWebSocket {
    send(data) {
      let message = null;
      try {
        message = JSON.parse(data);
      } catch {
        // Not JSON: sent as it is.
      }
      if (message && probe.dropping.some((rule) => matches(message, rule))) {
        probe.dropped.push(message);
        return;
      }
      super.send(data);
    }

    constructor(...args) {
      super(...args);
      probe.sockets.push(this);
      this.addEventListener("close", (event) => probe.closes.push({ code: event.code, reason: event.reason }));
      // Added before the page can add its own listener or set onmessage, so it runs first and can stop the rest.
      this.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        const rewrite = event.probeRewritten ? null : probe.rewriting.find((rule) => matches(message, rule.match));
        if (rewrite) {
          event.stopImmediatePropagation();
          const rewritten = new MessageEvent("message", { data: JSON.stringify({ ...message, ...rewrite.set }) });
          rewritten.probeRewritten = true;
          this.dispatchEvent(rewritten);
          return;
        }
        probe.received.push(message);
        if (probe.holding.some((rule) => matches(message, rule))) {
          probe.held.push(message);
          event.stopImmediatePropagation();
        }
      });
    }
  }
  window.WebSocket = ProbedWebSocket;

  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== Node.ELEMENT_NODE) continue;
        const rings = node.matches(".ring") ? [node] : Array.from(node.querySelectorAll(".ring"));
        for (const ring of rings) probe.ringsAdded.push(ring.outerHTML);
      }
    }
  }).observe(document, { childList: true, subtree: true });
})();
