// runboat console: keeps the pages up to date (from the build events stream,
// polling the server when the stream is not open), sends the actions of the
// buttons, and follows a build being started.
"use strict";

(function () {
  const notice = document.getElementById("notice");
  let noticeTimer = 0;

  function say(text) {
    if (!notice) return;
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { notice.hidden = true; }, 6000);
  }

  async function detail(response) {
    try {
      const body = await response.json();
      if (body && body.detail) return body.detail;
    } catch (e) { /* not JSON */ }
    return response.status + " " + response.statusText;
  }

  // Polling of the page body: [data-poll] holds the address of its HTML;
  // it is replaced when it changes. Paused while the page is hidden. While
  // the build events stream of [data-events] is open, each event of it
  // refreshes the body at once and the polling slows down to a safety net.
  const polled = document.querySelector("[data-poll]");
  let refresh = function () {};
  if (polled) {
    const url = polled.dataset.poll;
    const pollMs = parseInt(polled.dataset.pollMs, 10) || 2500;
    let every = pollMs;
    let timer = 0;
    let inFlight = false;
    let again = false; // asked for while a refresh was in flight
    // The last body received: the browser serializes innerHTML its own
    // way, so comparing with it would replace the body every time.
    let last = null;
    refresh = async function () {
      clearTimeout(timer);
      if (inFlight) { again = true; return; }
      inFlight = true;
      again = false;
      try {
        const r = await fetch(url, { cache: "no-store", headers: { "Accept": "text/html" } });
        if (r.ok) {
          const html = await r.text();
          if (html !== last) {
            last = html;
            polled.innerHTML = html;
          }
        }
      } catch (e) {
        // Offline for a moment: try again at the next tick.
      } finally {
        inFlight = false;
        if (!document.hidden) timer = setTimeout(refresh, again ? 0 : every);
      }
    };
    timer = setTimeout(refresh, every);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
    });
    if (polled.dataset.events && window.EventSource) {
      const source = new EventSource(polled.dataset.events);
      let soon = 0;
      source.onopen = function () { every = 30000; polled.dataset.streaming = "open"; };
      // EventSource connects again by itself; meanwhile, poll.
      source.onerror = function () { every = pollMs; polled.dataset.streaming = "closed"; };
      source.onmessage = function () {
        // A burst of events gives one refresh.
        clearTimeout(soon);
        soon = setTimeout(refresh, 100);
      };
    }
  }

  // Buttons: [data-action] holds the address to POST to.
  document.addEventListener("click", async function (ev) {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    ev.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    let done = false;
    try {
      const r = await fetch(button.dataset.action, { method: "POST", headers: { "Accept": "application/json" } });
      if (r.ok) done = true; else say(await detail(r));
    } catch (e) {
      say("The server could not be reached.");
    }
    button.disabled = false;
    // A page that is not kept up to date shows the outcome by loading again
    // (the reset of a failed build then follows its new initialization).
    if (done && !polled) location.reload(); else refresh();
  });

  // Wake-on-click: [data-live] holds the API address of the build; once it
  // is started, go there. Failures and undeploys are shown by the server.
  const live = document.querySelector("[data-live]");
  if (live) {
    const api = live.dataset.live;
    const every = parseInt(live.dataset.pollMs, 10) || 2000;
    const status = live.querySelector("[data-live-status]");
    let lastStart = 0;
    const follow = async function () {
      try {
        const r = await fetch(api, { cache: "no-store", headers: { "Accept": "application/json" } });
        if (r.status === 404) { location.reload(); return; }
        if (r.ok) {
          const b = await r.json();
          if (status) status.textContent = b.status;
          if (b.status === "started") { location.replace(b.deploy_link); return; }
          if (b.status === "failed" || b.status === "undeploying") { location.reload(); return; }
          // Initialized meanwhile, or stopped by the stopper: start it
          // (again), at most every 10 s.
          if ((b.status === "stopped" || b.status === "stopping") && Date.now() - lastStart > 10000) {
            lastStart = Date.now();
            fetch(api + "/start", { method: "POST" }).catch(function () {});
          }
        }
      } catch (e) {
        // Offline for a moment: try again.
      }
      setTimeout(follow, every);
    };
    // A stopped build: start it at once (the GET of the page changed
    // nothing, so that bots wake no build).
    setTimeout(follow, live.dataset.autostart !== undefined ? 0 : every);
  }
})();
