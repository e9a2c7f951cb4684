// The websocket client every view uses (docs/protocol.md): one socket per session,
// reconnect with backoff, clock sync against the session clock, and the state restored
// from the server's `hello` on every (re)connection.

const PROTOCOL_VERSION = 1;

/** The page's session id, token and the websocket URL (the page URL is /s/<session>/<page>). */
export function pageContext() {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const m = location.pathname.match(/^\/s\/([^/]+)\//);
  const session = m ? decodeURIComponent(m[1]) : null;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = session
    ? `${scheme}//${location.host}/ws/${encodeURIComponent(session)}?token=${encodeURIComponent(token)}`
    : null;
  return { session, token, ws };
}

/**
 * The connection to one session.
 *
 * Callbacks: onHello(hello) after every (re)connection (reset the view and draw
 * hello.state); onFrame(frame) for each later frame; onConnection(state, detail) with
 * state "connecting", "open", "reconnecting", "ended" or "refused"; onClock(deltaS) when
 * the clock estimate moved (deltaS: how much later the same instant now reads).
 *
 * Clock sync: offset = server_time_s − (t_sent + t_received) / 2 from `hello` and from
 * `pong` round trips; among the last 16 samples, those with (nearly) the smallest round
 * trip (UI.md) decide, the largest offset of them winning (robust to a server clock that
 * advances in steps). Samples from a session clock that has not started (0) count only
 * until it runs.
 */
export class SessionSocket {
  constructor(url, { onHello, onFrame, onConnection, onClock, query = "" } = {}) {
    this.url = url + query;
    this.onHello = onHello || (() => {});
    this.onFrame = onFrame || (() => {});
    this.onConnection = onConnection || (() => {});
    this.onClock = onClock || (() => {});
    this.ws = null;
    this.seq = 0;
    this.offsetS = null; // session clock − client clock (s)
    this.bestRttS = Infinity;
    this.attempt = 0;
    this.ended = false; // the session said it ended (a status frame)
    this.final = false; // nothing more to connect to: close() or a hello saying ended
    this.hello = null;
    this.connection = "connecting";
    this._pingTimer = null;
    this._retryTimer = null;
    this._pending = new Map(); // client seq -> {resolve, reject, t}
    this._openedAt = 0;
    this._pings = 0;
  }

  /** Client clock in seconds (monotonic). */
  static clientNow() {
    return performance.now() / 1000;
  }

  /** The session clock now, as this client estimates it (null before the first hello). */
  serverNow(clientS = SessionSocket.clientNow()) {
    if (this.offsetS === null) return null;
    return clientS + this.offsetS;
  }

  connect() {
    if (this.final) return;
    if (!this.ended) this._setConnection(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    this._helloSentAt = SessionSocket.clientNow();
    ws.onmessage = (ev) => this._receive(ev.data);
    ws.onclose = (ev) => this._closed(ev);
    ws.onerror = () => {}; // onclose follows and says what to do
  }

  /** Send a client frame; resolves with the server's ack (or rejects with its error). */
  send(frame) {
    const seq = ++this.seq;
    const msg = { ...frame, v: PROTOCOL_VERSION, seq };
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error("not connected: the change was not sent; try again when connected"));
        return;
      }
      this._pending.set(seq, { resolve, reject, t: SessionSocket.clientNow() });
      this.ws.send(JSON.stringify(msg));
      setTimeout(() => {
        if (this._pending.has(seq)) {
          this._pending.delete(seq);
          reject(new Error("no answer from the server within 5 s"));
        }
      }, 5000);
    });
  }

  close() {
    this.final = true;
    clearTimeout(this._retryTimer);
    clearInterval(this._pingTimer);
    if (this.ws) this.ws.close(1000);
  }

  _setConnection(state, detail) {
    this.connection = state;
    this.onConnection(state, detail);
  }

  _clockSample(serverTimeS, sentS, receivedS) {
    const rtt = receivedS - sentS;
    if (!(rtt >= 0) || typeof serverTimeS !== "number") return;
    const offset = serverTimeS - (sentS + receivedS) / 2;
    // A session clock still at 0 has not started (no input yet): use such samples only
    // until the clock runs.
    const running = serverTimeS > 0;
    if (running && !this._clockRunning) {
      this._samples = [];
      this._clockRunning = true;
    } else if (!running && this._clockRunning) {
      return;
    }
    this._samples = (this._samples || []).concat([{ rtt, offset }]).slice(-16);
    // Among the samples with (nearly) the smallest round trip, take the largest offset: with
    // an exact server clock these agree within the round trip; with one that advances in
    // steps (the time of the last input) the largest lags least.
    const minRtt = Math.min(...this._samples.map((x) => x.rtt));
    let best = null;
    for (const x of this._samples) if (x.rtt <= minRtt + 0.01 && (best === null || x.offset > best.offset)) best = x;
    const delta = this.offsetS === null ? 0 : best.offset - this.offsetS;
    this.bestRttS = best.rtt;
    this.offsetS = best.offset;
    if (delta !== 0) this.onClock(delta);
  }

  _ping() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const seq = ++this.seq;
    this.ws.send(
      JSON.stringify({ type: "ping", v: PROTOCOL_VERSION, seq, client_time: SessionSocket.clientNow() }),
    );
    this._pings += 1;
    // Quick pings at first (the clock estimate), then a slow keep-alive.
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => this._ping(), this._pings < 6 ? 500 : 5000);
  }

  _receive(data) {
    let frame;
    try {
      frame = typeof data === "string" ? JSON.parse(data) : data;
    } catch (err) {
      return; // not ours to crash on; the server only sends JSON
    }
    // Several frames in one message (docs/protocol.md "batch"): each as if it came alone.
    if (frame && frame.type === "batch" && Array.isArray(frame.frames)) {
      for (const f of frame.frames) this._receive(f);
      return;
    }
    const now = SessionSocket.clientNow();
    if (frame.type === "hello") {
      // A new connection: the session clock may have restarted with the server.
      this.bestRttS = Infinity;
      this._samples = [];
      this._clockRunning = false;
      const prevOffset = this.offsetS;
      this.offsetS = null;
      this._clockSample(frame.server_time_s, this._helloSentAt, now);
      if (prevOffset !== null && this.offsetS !== null) this.onClock(this.offsetS - prevOffset);
      this.attempt = 0;
      this.hello = frame;
      this.ended = !!frame.ended;
      this.final = !!frame.ended && frame.mode !== "review";
      this._pings = 0;
      this._setConnection("open");
      this.onHello(frame);
      this._ping();
      return;
    }
    if (frame.type === "pong") {
      if (typeof frame.client_time === "number") this._clockSample(frame.server_time_s, frame.client_time, now);
      return;
    }
    // The answer to a client frame carries its seq as `re` (an ack, an error, or, for a
    // review command, the review_state it caused).
    if (frame.re != null && this._pending.has(frame.re)) {
      const p = this._pending.get(frame.re);
      this._pending.delete(frame.re);
      if (frame.type === "error") p.reject(new Error(frame.message || frame.code));
      else p.resolve(frame);
    }
    if (frame.type === "ack") return;
    if (frame.type === "status" && frame.participant == null && frame.ended) {
      this.ended = true;
      this._setConnection("ended");
    }
    this.onFrame(frame);
  }

  _closed(ev) {
    clearInterval(this._pingTimer);
    this.ws = null;
    for (const p of this._pending.values()) p.reject(new Error("connection lost"));
    this._pending.clear();
    // The session ended and the server closed normally (1000, docs/protocol.md): done.
    // A server going away (1001, e.g. vagus serve restarting) may bring it back.
    if (this.ended && ev && ev.code === 1000) this.final = true;
    if (this.final) {
      this._setConnection("ended");
      return;
    }
    if (this.ended) {
      // The session said it ended; a server restart may still bring it back (vagus serve
      // resumes its sessions): look again now and then, quietly.
      this._setConnection("ended");
      this._retryTimer = setTimeout(() => this.connect(), 10000);
      return;
    }
    this._scheduleRetry(ev);
  }

  _scheduleRetry(ev) {
    // Exponential backoff with jitter: 0.5, 1, 2, 4, 8, then every ~10 s.
    const base = Math.min(10, 0.5 * 2 ** this.attempt);
    const delayS = base * (0.75 + 0.5 * Math.random());
    this.attempt += 1;
    this._setConnection("reconnecting", { code: ev ? ev.code : null, reason: ev ? ev.reason : "", delayS });
    this._retryTimer = setTimeout(() => this.connect(), delayS * 1000);
  }
}
