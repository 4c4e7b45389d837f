"use strict";

// The agent page: one WebSocket to the gateway, the server's workstation events in, the agent's
// commands out. The server's `state` answer is the truth the page starts from after every (re)connect.
(function () {
  const token = new URLSearchParams(window.location.search).get("token") || "";
  const el = (id) => document.getElementById(id);
  const dom = {
    connection: el("connection"),
    agent: el("agent"),
    agentDisplay: el("agent-display"),
    status: el("status"),
    statusLabel: document.querySelector(".status-label"),
    desk: el("desk"),
    rings: el("rings"),
    sessions: el("sessions"),
    notice: el("notice"),
    announcer: el("ring-announcer"),
    signinError: el("signin-error"),
    colleagues: el("colleagues"),
    ringsTitle: el("rings-title"),
    soundHint: el("sound-hint"),
  };

  const rings = new Map(); // offer -> { conversation, user, offer, expiresAt (ms), element }
  // The gateway closes a page with it when the agent has too many open (GatewayServer.tooManyPagesCloseCode).
  const tooManyPagesCloseCode = 4008;
  let socket = null;
  // Reset once a connection proved itself with the state answer, not when a socket merely opens: a gateway that
  // accepts sockets and closes them at once must not be asked again twice a second.
  let reconnectAttempts = 0;
  // The gateway of this socket sends at least a heartbeat this often (its hello's heartbeatMs; null until then, or
  // for a gateway that sends none); a socket silent for three of them is taken as dead, since a connection that
  // died without a close (a laptop that slept, a dropped proxy) never says so. A socket still connecting is
  // given up after connectingLimitMs.
  let heartbeatMs = null;
  let receivedHello = false;
  const connectingLimitMs = 45000;
  let lastHeard = 0;
  // Timers stall while the machine sleeps or the tab is frozen: after a stall the socket is not judged for a
  // moment, so that messages queued meanwhile arrive first (once per silence).
  const stallGraceMs = 1500;
  let lastCheck = Date.now();
  let judgeAfter = 0;
  let stallGraceUsed = false;
  // Each command carries a `ref`; a gateway error about it repeats the ref, so only its buttons work again.
  let nextRef = 0;
  let statusRef = null;
  let reconnectTimer = null;
  let stopped = false;
  let noticeTimer = null;
  // The status the server last told; the menu goes back to it when a change is not taken.
  let confirmedStatus = null;

  // ---- Server clock -------------------------------------------------------------------------------
  // The clock a ring's expiresAt is counted on is the services' (the Router sets it, the Notifier sends the
  // ring with its own time): samples come only from the Notifier's events, never from the gateway, whose
  // host's clock may differ. Each sample is (server time when sent) - (local time when received) = offset -
  // network delay, so it never overstates the offset; the largest recent sample is the best estimate. A
  // replayed event carries an old time and gives a smaller sample, which the maximum ignores.
  const clockSamples = [];
  const sampleWindowMs = 60000;

  function addClockSample(serverTimeText) {
    const serverTime = Date.parse(serverTimeText);
    if (Number.isNaN(serverTime)) return;
    const now = Date.now();
    clockSamples.push({ value: serverTime - now, at: now });
    while (clockSamples.length > 0 && now - clockSamples[0].at > sampleWindowMs) clockSamples.shift();
  }

  function serverNow() {
    if (clockSamples.length === 0) return Date.now();
    let offset = -Infinity;
    for (const sample of clockSamples) offset = Math.max(offset, sample.value);
    return Date.now() + offset;
  }

  function secondsLeft(ring) {
    return Math.max(0, Math.round((ring.expiresAt - serverNow()) / 1000));
  }

  // ---- Connection ---------------------------------------------------------------------------------
  function setConnection(state) {
    const text = { connecting: "Connecting…", connected: "Connected", disconnected: "Disconnected" }[state];
    dom.connection.dataset.state = state;
    dom.connection.textContent = text;
    dom.status.disabled = state !== "connected";
  }

  function showSignInError(message) {
    stopped = true;
    dom.signinError.textContent = message;
    dom.signinError.hidden = false;
    dom.desk.hidden = true;
    dom.status.hidden = true;
    dom.statusLabel.hidden = true;
    dom.agent.textContent = "";
    dom.agentDisplay.textContent = "";
    setConnection("disconnected");
    for (const offer of [...rings.keys()]) removeRing(offer);
  }

  /// Asks the gateway who the token signs in: a bad link is told apart from a network failure.
  async function checkToken() {
    try {
      const response = await fetch("/session?token=" + encodeURIComponent(token), { cache: "no-store" });
      if (response.status === 401) return "invalid";
      if (!response.ok) return "unknown";
      showIdentity(await response.json());
      return "valid";
    } catch (error) {
      return "unknown";
    }
  }

  function showIdentity(hello) {
    dom.agent.textContent = hello.agent + " · " + hello.desk;
    dom.agentDisplay.textContent = hello.name || hello.agent;
    document.title = (hello.name || hello.agent) + " · Switchboard";
    dom.desk.hidden = false;
    if (Array.isArray(hello.colleagues)) {
      dom.colleagues.replaceChildren(...hello.colleagues.map((colleague) => new Option(colleague.name, colleague.agent)));
    }
  }

  function connect() {
    if (stopped) return;
    clearTimeout(reconnectTimer);
    setConnection("connecting");
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(scheme + "//" + window.location.host + "/ws?token=" + encodeURIComponent(token));
    socket = ws;
    heartbeatMs = null;
    receivedHello = false;
    lastHeard = Date.now();
    let opened = false;
    ws.onopen = () => {
      opened = true;
      lastHeard = Date.now();
      setConnection("connected");
    };
    ws.onmessage = (message) => {
      if (socket === ws) {
        lastHeard = Date.now();
        stallGraceUsed = false;
      }
      let data;
      try {
        data = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      handle(data);
    };
    ws.onclose = async (event) => {
      if (!connectionLost(ws)) return;
      if (event.code === tooManyPagesCloseCode) {
        // Reconnecting would be refused the same way until another page of this agent closes.
        showSignInError("You have too many pages of the switchboard open. Close one, then reload this page.");
        return;
      }
      if (!opened && (await checkToken()) === "invalid") {
        showSignInError("This sign-in link is not valid. Ask for a new link to sign in.");
        return;
      }
      scheduleReconnect();
    };
  }

  /// Whether `ws` was the page's socket; if so the page is without one from now on.
  function connectionLost(ws) {
    if (socket !== ws) return false;
    socket = null;
    setConnection("disconnected");
    // Whether a command in flight was taken is unknown: its buttons work again, and the state answer after
    // the reconnect shows what is live.
    releasePending();
    return true;
  }

  /// A socket that heard nothing, not even a heartbeat, for three heartbeats is given up and another one opened.
  function checkAlive() {
    const now = Date.now();
    const stalled = now - lastCheck > 2000;
    lastCheck = now;
    const ws = socket;
    if (!ws) return;
    // Until the hello says how often heartbeats come (a gateway that sends none says nothing), an open socket
    // is held to the connecting limit: the hello is the first thing a gateway sends.
    const hello = ws.readyState === WebSocket.OPEN && heartbeatMs !== null && receivedHello;
    const limit = hello ? 3 * heartbeatMs : receivedHello ? null : connectingLimitMs;
    if (limit === null || now - lastHeard <= limit) return;
    if (stalled && !stallGraceUsed) {
      stallGraceUsed = true;
      judgeAfter = now + stallGraceMs;
    }
    if (now < judgeAfter) return;
    connectionLost(ws);
    try {
      ws.close();
    } catch (error) {
      // Closing a socket that is already gone is nothing to report.
    }
    scheduleReconnect();
  }

  setInterval(checkAlive, 1000);
  // After a sleep the timers catch up late: look at once when the machine or the tab is back.
  window.addEventListener("online", checkAlive);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") checkAlive();
  });

  function scheduleReconnect() {
    if (stopped) return;
    reconnectAttempts += 1;
    const delay = Math.min(10000, 500 * Math.pow(2, reconnectAttempts - 1)) * (0.8 + Math.random() * 0.4);
    reconnectTimer = setTimeout(connect, delay);
  }

  /// Sends the command with a new `ref` and returns the ref, or null when there is no connection to send it on.
  function send(command) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      showNotice("Not connected right now; try again once the connection is back.", "notConnected");
      return null;
    }
    nextRef += 1;
    const ref = "c" + nextRef;
    socket.send(JSON.stringify(Object.assign({}, command, { ref })));
    return ref;
  }

  /// The command's buttons wait for its answer: `holder` is the bar or session row they are on.
  function hold(holder, what, ref) {
    holder.dataset.pending = what;
    holder.dataset.ref = ref;
    for (const button of holder.querySelectorAll("button")) button.disabled = true;
  }

  // ---- Events -------------------------------------------------------------------------------------
  function handle(data) {
    if (data.kind === "hello") {
      showIdentity(data);
      receivedHello = true;
      if (Number.isFinite(data.heartbeatMs) && data.heartbeatMs > 0) heartbeatMs = data.heartbeatMs;
      return;
    }
    if (data.kind === "heartbeat") return;
    if (data.kind === "error") {
      // The command was not taken (not published, or not valid): its buttons work again. An error that names
      // no command (a gateway that does not repeat refs) releases them all.
      showNotice(data.message, "error");
      if (typeof data.ref === "string") releaseCommand(data.ref);
      else releasePending();
      return;
    }
    if (typeof data.at === "string" && data.type !== "ring") addClockSample(data.at);
    switch (data.type) {
      case "ring":
        addClockSample(data.serverTime);
        addRing(data.conversation, data.user, data.offer, Date.parse(data.expiresAt), true);
        break;
      case "countdown":
        break;
      case "ring.stopped":
        removeRing(data.offer);
        break;
      case "session.started":
        for (const ring of [...rings.values()]) {
          if (ring.conversation === data.conversation) removeRing(ring.offer);
        }
        addSession(data.conversation, data.user, data.mode);
        break;
      case "session.ended":
        removeSession(data.conversation);
        break;
      case "status.changed":
        showStatus(data.status);
        if (data.status === "break" && data.reason === "missedRings") {
          showNotice("You missed several rings in a row, so you were put on break. Choose online to take "
            + "conversations again.", "missedRings");
        }
        break;
      case "command.rejected":
        rejected(data);
        break;
      case "state":
        applyState(data);
        reconnectAttempts = 0;
        break;
      default:
        break;
    }
  }

  function applyState(state) {
    showStatus(state.status);
    const liveOffers = new Set(state.rings.map((ring) => ring.offer));
    for (const offer of [...rings.keys()]) {
      if (!liveOffers.has(offer)) removeRing(offer);
    }
    for (const ring of state.rings) {
      if (!rings.has(ring.offer)) addRing(ring.conversation, ring.user, ring.offer, Date.parse(ring.expiresAt), false);
    }
    // A session still served keeps its row (and a transfer form being filled in); the state does not say how
    // a session began, so one first seen here shows as accepted.
    const served = new Set(state.sessions.map((session) => session.conversation));
    for (const item of [...dom.sessions.querySelectorAll("li.session")]) {
      if (!served.has(item.dataset.conversation)) item.remove();
    }
    for (const session of state.sessions) {
      if (!sessionItem(session.conversation)) addSession(session.conversation, session.user, "accepted");
    }
  }

  function makeButton(className, text, type = "button") {
    const button = document.createElement("button");
    button.type = type;
    button.className = className;
    button.textContent = text;
    return button;
  }

  // ---- Rings --------------------------------------------------------------------------------------
  function addRing(conversation, user, offer, expiresAt, announce) {
    if (rings.has(offer)) return;
    const element = document.createElement("div");
    element.className = "ring";
    element.dataset.offer = offer;
    element.dataset.conversation = conversation;
    element.setAttribute("role", "group");
    element.setAttribute("aria-label", "Incoming conversation from " + user);

    const text = document.createElement("div");
    text.className = "ring-text";
    const userLine = document.createElement("div");
    userLine.className = "ring-user";
    userLine.textContent = user;
    const hint = document.createElement("div");
    hint.className = "ring-hint";
    hint.textContent = "is waiting for you";
    text.append(userLine, hint);

    const countdown = document.createElement("span");
    countdown.className = "ring-countdown";
    countdown.setAttribute("aria-label", "seconds left to accept");

    const accept = makeButton("accept", "Accept");
    const decline = makeButton("decline", "Decline");

    accept.addEventListener("click", () => {
      const ref = send({ type: "offer.accept", conversation, offer });
      if (ref) hold(element, "accept", ref);
    });
    decline.addEventListener("click", () => {
      const ref = send({ type: "offer.decline", conversation, offer });
      if (ref) hold(element, "decline", ref);
    });

    element.append(text, countdown, accept, decline);
    const ring = { conversation, user, offer, expiresAt, element, countdown };
    rings.set(offer, ring);
    dom.rings.append(element);
    renderCountdown(ring);
    if (announce) dom.announcer.textContent = user + " is waiting, " + secondsLeft(ring) + " seconds to accept";
    if (document.activeElement === document.body) accept.focus();
    ringtone.update();
  }

  function removeRing(offer) {
    const ring = rings.get(offer);
    if (!ring) return;
    const hadFocus = ring.element.contains(document.activeElement);
    ring.element.remove();
    rings.delete(offer);
    // Not to the next bar's Accept: a key still held down would accept a conversation never looked at.
    if (hadFocus) dom.ringsTitle.focus();
    ringtone.update();
  }

  function renderCountdown(ring) {
    const seconds = secondsLeft(ring);
    const text = String(seconds);
    if (ring.countdown.textContent !== text) ring.countdown.textContent = text;
    ring.countdown.classList.toggle("urgent", seconds <= 5);
    // Past its expiry the bar stays until the server says how the ring ended (a click still gets a
    // definitive answer), but it no longer rings: with the connection lost, that word may be long in coming.
    const expired = ring.expiresAt <= serverNow();
    if ((ring.element.dataset.expired === "true") !== expired) ring.element.dataset.expired = String(expired);
  }

  setInterval(() => {
    for (const ring of rings.values()) renderCountdown(ring);
    ringtone.update();
  }, 100);

  // ---- Sessions -----------------------------------------------------------------------------------
  const modeText = { accepted: "Accepted", autoAccepted: "Started automatically", transferred: "Transferred to you" };

  function addSession(conversation, user, mode) {
    removeSession(conversation);
    const item = document.createElement("li");
    item.className = "session";
    item.dataset.conversation = conversation;
    item.dataset.mode = mode;
    const name = document.createElement("span");
    name.className = "session-user";
    name.textContent = user;
    const how = document.createElement("span");
    how.className = "session-mode";
    how.textContent = modeText[mode] || mode;
    const transfer = makeButton("transfer", "Transfer…");
    transfer.setAttribute("aria-expanded", "false");
    const end = makeButton("end-session", "End Session");
    end.addEventListener("click", () => {
      const ref = send({ type: "session.end", conversation });
      if (ref) hold(item, "end", ref);
    });
    const form = transferForm(item, conversation, user, transfer);
    transfer.addEventListener("click", () => {
      if (form.hidden) openTransfer(form, transfer);
      else closeTransfer(form, transfer);
    });
    item.append(name, how, transfer, end, form);
    dom.sessions.append(item);
  }

  // ---- Transfer -----------------------------------------------------------------------------------
  // To a named agent, to a group's queue, or back to the queue the conversation came from. The Router
  // decides; until it does, the session's buttons wait, and a refusal leaves the form open to correct.
  const identifierPattern = "[A-Za-z0-9_\\-]{1,64}";
  const transferKinds = [
    { value: "agent", text: "an agent", placeholder: "agent id", field: "toAgent", suggestions: "colleagues" },
    { value: "group", text: "a group", placeholder: "group id", field: "toGroup", suggestions: null },
    { value: "queue", text: "the waiting queue", placeholder: "", field: null, suggestions: null },
  ];

  function transferForm(item, conversation, user, toggle) {
    const form = document.createElement("form");
    form.className = "transfer-form";
    form.hidden = true;
    form.setAttribute("aria-label", "Transfer the conversation with " + user);
    const label = document.createElement("label");
    label.textContent = "Transfer to ";
    const kind = document.createElement("select");
    kind.className = "transfer-kind";
    for (const option of transferKinds) kind.append(new Option(option.text, option.value));
    label.append(kind);
    const target = document.createElement("input");
    target.type = "text";
    target.className = "transfer-to";
    target.required = true;
    target.pattern = identifierPattern;
    target.maxLength = 64;
    target.autocomplete = "off";
    target.spellcheck = false;
    target.setAttribute("aria-label", "who to transfer to");
    const sendButton = makeButton("transfer-send", "Transfer", "submit");
    const cancel = makeButton("transfer-cancel", "Cancel");

    const chosen = () => transferKinds.find((option) => option.value === kind.value);
    const showKind = () => {
      const option = chosen();
      target.hidden = option.field === null;
      target.required = option.field !== null;
      target.placeholder = option.placeholder;
      if (option.suggestions) target.setAttribute("list", option.suggestions);
      else target.removeAttribute("list");
    };
    kind.addEventListener("change", showKind);
    showKind();
    cancel.addEventListener("click", () => closeTransfer(form, toggle));
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closeTransfer(form, toggle);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      const option = chosen();
      const command = { type: "session.transfer", conversation };
      if (option.field !== null) command[option.field] = target.value;
      const ref = send(command);
      if (ref) {
        hold(item, "transfer", ref);
        item.dataset.transferTo = option.field === "toAgent" ? target.value : "";
      }
    });
    form.append(label, target, sendButton, cancel);
    return form;
  }

  function openTransfer(form, toggle) {
    form.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    const target = form.querySelector(".transfer-to");
    (target.hidden ? form.querySelector(".transfer-kind") : target).focus();
  }

  function closeTransfer(form, toggle) {
    form.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }

  function sessionItem(conversation) {
    return [...dom.sessions.querySelectorAll("li.session")].find((item) => item.dataset.conversation === conversation);
  }

  function removeSession(conversation) {
    const item = sessionItem(conversation);
    if (item) item.remove();
  }

  // ---- Notices ------------------------------------------------------------------------------------
  const reasonText = {
    unknownConversation: "That conversation no longer exists.",
    unknownAgent: "The switchboard does not know you as an agent of this desk.",
    unknownDesk: "The switchboard does not know this desk.",
    notServing: "You are not serving that conversation any more.",
    agentUnavailable: "You cannot take conversations with your current status.",
    forbidden: "This gateway may not act for your desk.",
    invalid: "The switchboard could not read that command.",
  };

  // A transfer names someone else: its refusals are about them, not about the agent who asked.
  function transferReasonText(reason, conversation) {
    const item = sessionItem(conversation);
    const named = item && item.dataset.transferTo ? "“" + item.dataset.transferTo + "”" : "by that id";
    return {
      unknownAgent: "There is no agent " + named + " on this desk.",
      agentUnavailable: "The agent " + named + " is not taking conversations right now.",
      invalid: "A conversation cannot be transferred to yourself.",
    }[reason];
  }

  function rejected(event) {
    if (event.reason === "offerExpired" || event.reason === "offerNotYours") {
      // A second click (another page of the agent, say) on a ring already accepted: the session is open.
      showNotice(sessionItem(event.conversation) ? "You are already serving this conversation."
        : "Sorry, this conversation was offered to someone else.", event.reason);
      for (const ring of [...rings.values()]) {
        if (ring.conversation === event.conversation && ring.element.dataset.pending) removeRing(ring.offer);
      }
      return;
    }
    const text = (event.commandType === "session.transfer" && transferReasonText(event.reason, event.conversation))
      || reasonText[event.reason] || "The switchboard refused that: " + event.reason + ".";
    showNotice(text, event.reason);
    if (event.commandType === "agent.status" && confirmedStatus) dom.status.value = confirmedStatus;
    if (event.reason === "unknownConversation" || event.reason === "notServing") {
      // The conversation is gone, or no longer this agent's: nothing of it is left to act on.
      for (const ring of [...rings.values()]) {
        if (ring.conversation === event.conversation) removeRing(ring.offer);
      }
      removeSession(event.conversation);
      return;
    }
    releasePending(event.conversation);
  }

  /// Makes the buttons of commands sent and not answered work again: all of them (and the status menu shows the
  /// status the server last told), or one conversation's.
  function releasePending(conversation) {
    for (const holder of document.querySelectorAll("[data-pending]")) {
      if (conversation !== undefined && holder.dataset.conversation !== conversation) continue;
      release(holder);
    }
    if (conversation === undefined && confirmedStatus) dom.status.value = confirmedStatus;
  }

  /// Makes the buttons of the command sent with `ref` work again (or the status menu show the confirmed status).
  function releaseCommand(ref) {
    for (const holder of document.querySelectorAll("[data-pending]")) {
      if (holder.dataset.ref === ref) release(holder);
    }
    if (ref === statusRef && confirmedStatus) dom.status.value = confirmedStatus;
  }

  function release(holder) {
    delete holder.dataset.pending;
    delete holder.dataset.ref;
    for (const button of holder.querySelectorAll("button")) button.disabled = false;
  }

  function showStatus(status) {
    confirmedStatus = status;
    // Not while a status stepped to with the keyboard waits to be sent: the agent is choosing.
    if (statusTimer === null) dom.status.value = status;
  }

  function showNotice(text, reason) {
    dom.notice.textContent = text;
    dom.notice.dataset.reason = reason;
    dom.notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      dom.notice.hidden = true;
    }, 20000);
  }

  // ---- Status -------------------------------------------------------------------------------------
  // The arrow keys (and type-ahead) step a closed menu through its options with a `change` at every step, so a
  // change made that way is sent once the menu has rested a moment, on Enter, or when focus leaves it: stepping
  // from online past break to offline must not put the agent on break on the way. A pick with the pointer, or
  // from the open list, is sent at once.
  const statusSettleMs = 1000;
  const steppingKeys = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"]);
  let statusStepped = false;
  let statusTimer = null;

  function sendStatus() {
    clearTimeout(statusTimer);
    statusTimer = null;
    statusRef = send({ type: "agent.status", status: dom.status.value });
    // Not sent: the menu goes back to the status the server last told.
    if (statusRef === null && confirmedStatus) dom.status.value = confirmedStatus;
  }

  dom.status.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && statusTimer !== null) {
      sendStatus();
      return;
    }
    statusStepped = steppingKeys.has(event.key) || (event.key.length === 1 && event.key !== " ");
  });
  dom.status.addEventListener("pointerdown", () => {
    statusStepped = false;
  });
  dom.status.addEventListener("change", () => {
    if (!statusStepped) {
      sendStatus();
      return;
    }
    statusStepped = false;
    clearTimeout(statusTimer);
    statusTimer = setTimeout(sendStatus, statusSettleMs);
  });
  dom.status.addEventListener("blur", () => {
    statusStepped = false;
    if (statusTimer !== null) sendStatus();
  });

  // ---- Ringtone -----------------------------------------------------------------------------------
  // Two soft tones every two seconds while any ring is live. Browsers allow audio only after the person
  // interacted with the page; until then every call here fails quietly.
  const ringtone = (function () {
    let context = null;
    let timer = null;

    function audioContext() {
      try {
        if (!context) {
          const AudioContextClass = window.AudioContext || window.webkitAudioContext;
          if (!AudioContextClass) return null;
          context = new AudioContextClass();
        }
        if (context.state === "suspended") context.resume().catch(() => {});
        return context;
      } catch (error) {
        return null;
      }
    }

    function tone(audio, frequency, start, length) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start(start);
      oscillator.stop(start + length + 0.05);
    }

    function play() {
      try {
        const audio = audioContext();
        if (!audio || audio.state !== "running") return;
        const now = audio.currentTime;
        tone(audio, 880, now, 0.18);
        tone(audio, 660, now + 0.22, 0.18);
      } catch (error) {
        // No sound is better than a broken page.
      }
    }

    // Rings while a bar is live and not past its expiry; `body[data-ringing]` says which.
    function update() {
      const live = [...rings.values()].some((ring) => ring.element.dataset.expired !== "true");
      if (live && timer === null) {
        play();
        timer = setInterval(play, 2000);
      } else if (!live && timer !== null) {
        clearInterval(timer);
        timer = null;
      }
      const ringing = String(timer !== null);
      if (document.body.dataset.ringing !== ringing) document.body.dataset.ringing = ringing;
      // Browsers play sound only after the person interacted with the page: until then, say so.
      const audible = context !== null && context.state === "running";
      if (dom.soundHint.hidden !== audible) dom.soundHint.hidden = audible;
    }

    // The first click or key press unlocks audio for the rest of the visit.
    const unlock = () => audioContext();
    window.addEventListener("pointerdown", unlock, { once: true });
    window.addEventListener("keydown", unlock, { once: true });

    return { update };
  })();

  // ---- Start --------------------------------------------------------------------------------------
  async function start() {
    if (!token) {
      showSignInError("This page needs the sign-in link you were given.");
      return;
    }
    setConnection("connecting");
    if ((await checkToken()) === "invalid") {
      showSignInError("This sign-in link is not valid. Ask for a new link to sign in.");
      return;
    }
    connect();
  }

  start();
})();
