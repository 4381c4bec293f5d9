// Chat and queue events over Socket.IO (path /socket.io). A message is sent with a client_id and
// retried until the server acks it (the server stores it once); after a reconnect the client asks
// for the history after the last id it has, so nothing is lost or shown twice.
import { io } from "../vendor/socket.io.esm.min.js";
import { uuid } from "./dom.js";

const ACK_TIMEOUT_MS = 5000;
const UPLOAD_TIMEOUT_MS = 60000; // a 5 MB photo on a slow mobile uplink

/** `token` is read on every (re)connect: a session token is short-lived and refreshed while the call runs. */
function connect(token) {
  return io({ path: "/socket.io", auth: (cb) => cb({ token: token() }), transports: ["websocket"],
              reconnectionDelayMax: 3000 });
}

/** Stream ids "<ms>-<seq>": true when a is later than b. */
function later(a, b) {
  if (b === null) return true;
  const [am, as] = String(a).split("-").map(Number);
  const [bm, bs] = String(b).split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

export class Chat extends EventTarget {
  constructor(token, consultationId) {
    super();
    this.token = token;
    this.cid = consultationId;
    this.socket = null;
    this.lastId = null;
    this.participantId = null;
    this.seen = new Set();
    this.pending = new Map(); // client_id → {text}
    this.joined = false;
  }

  start() {
    this.socket = connect(() => this.token);
    this.socket.on("connect", () => this._join());
    this.socket.on("disconnect", () => { this.joined = false; this._emit("state", { connected: false }); });
    this.socket.on("connect_error", () => this._emit("state", { connected: false }));
    this.socket.on("message", (m) => this._receive(m));
    this.socket.on("typing", (e) => this._emit("typing", e));
    this.socket.on("knock", (e) => this._emit("knock", e));
    this.socket.on("ended", (e) => { if (e?.consultation_id === this.cid) this._emit("ended", e); });
  }

  stop() { this.socket?.disconnect(); this.socket = null; }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  async _join() {
    try {
      const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("join",
        { consultation_id: this.cid, ...(this.lastId ? { after_id: this.lastId } : {}) });
      if (!ack?.ok) { this._emit("state", { connected: false, error: ack }); return; }
      this.participantId = ack.participant_id;
      this.joined = true;
      (ack.history || []).forEach((m) => this._receive(m));
      this._emit("state", { connected: true });
      for (const [clientId, p] of this.pending) this._trySend(clientId, p.text);
    } catch {
      this._emit("state", { connected: false });
      // not answered in time: try again while connected
      setTimeout(() => { if (this.socket?.connected && !this.joined) this._join(); }, 1000);
    }
  }

  isMine(m) { return !!m?.sender && m.sender.participant_id === this.participantId; }

  _receive(m) {
    if (!m || (m.consultation_id && m.consultation_id !== this.cid) || this.seen.has(m.id)) return;
    this.seen.add(m.id);
    if (later(m.id, this.lastId)) this.lastId = m.id;
    if (this.isMine(m)) {
      // Our own message broadcast back, possibly before its ack: match a pending one by text.
      for (const [clientId, p] of this.pending) {
        if (p.text === m.text) {
          this.pending.delete(clientId);
          this._emit("delivered", { client_id: clientId, id: m.id, ts: m.ts });
          return;
        }
      }
    }
    this._emit("message", m);
  }

  /** Shows the message as pending at once; it is retried until the server has stored it. */
  send(text) {
    const clientId = uuid().replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64);
    this.pending.set(clientId, { text });
    this._emit("pending", { client_id: clientId, text });
    if (this.joined) this._trySend(clientId, text);
    return clientId;
  }

  async _trySend(clientId, text) {
    let ack;
    try {
      ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("message",
        { consultation_id: this.cid, client_id: clientId, text });
    } catch {
      ack = null; // no ack in time: retried below or on the next (re)join
    }
    if (!this.pending.has(clientId)) return; // delivered by the broadcast already
    if (ack?.ok) {
      this.pending.delete(clientId);
      this.seen.add(ack.id);
      if (later(ack.id, this.lastId)) this.lastId = ack.id;
      this._emit("delivered", { client_id: clientId, id: ack.id, ts: ack.ts });
      return;
    }
    if (ack && !ack.retry_after_s && ack.error !== "unavailable") {
      this.pending.delete(clientId);
      this._emit("failed", { client_id: clientId, ...ack });
      return;
    }
    const wait = 1000 * (ack?.retry_after_s || 1);
    setTimeout(() => { if (this.joined && this.pending.has(clientId)) this._trySend(clientId, text); }, wait);
  }

  /** A photo (JPEG, PNG or HEIC bytes): resolves with the ack ({id, ts, attachment}) once stored; throws an
   * Error with the server's `code` and message otherwise. The sender shows it from its own bytes.
   * onProgress(sent, total): bytes handed to the network so far, from the WebSocket's bufferedAmount (the
   * photo is one binary frame; what is still buffered has not left this device). */
  async sendAttachment(data, name, onProgress = () => {}) {
    if (!this.joined) throw Object.assign(new Error(""), { code: "not_connected" });
    const clientId = uuid().replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64);
    const ws = this.socket.io?.engine?.transport?.ws;
    const total = data.byteLength;
    const before = ws ? ws.bufferedAmount : 0;
    let watch = null;
    let ack;
    try {
      const sending = this.socket.timeout(UPLOAD_TIMEOUT_MS).emitWithAck("attachment",
        { consultation_id: this.cid, client_id: clientId, data, name });
      // The photo's frame is queued on the socket a moment after the emit (the small header frame first):
      // until most of it is seen buffered, count nothing as sent (a fast link then jumps from 0 to done).
      let queued = false;
      const report = () => {
        const left = ws ? Math.max(0, ws.bufferedAmount - before) : 0;
        if (left > total / 2) queued = true;
        onProgress(queued ? Math.max(0, Math.min(total, total - left)) : 0, total);
      };
      report();
      watch = setInterval(report, 250);
      ack = await sending;
      onProgress(total, total);
    } catch {
      throw Object.assign(new Error(""), { code: "upload_timeout" });
    } finally {
      clearInterval(watch);
    }
    if (!ack?.ok) throw Object.assign(new Error(ack?.message || ""), { code: ack?.error || "upload_failed" });
    this.seen.add(ack.id);
    if (later(ack.id, this.lastId)) this.lastId = ack.id;
    return ack;
  }

  typing() { if (this.joined) this.socket.emit("typing", { consultation_id: this.cid, typing: true }); }
}

/** Queue events for a waiting citizen (watch_ticket → queue_position, called): a hint to look again
 * at once; the waiting room also polls, so a missed event only costs a few seconds. */
export class QueueEvents {
  constructor(token, ticketId, onChange) {
    this.token = token;
    this.ticketId = ticketId;
    this.onChange = onChange;
    this.socket = null;
  }

  start() {
    try {
      this.socket = connect(() => this.token);
      // (Re)connected: watch the ticket again; this also tells the server the owner is back.
      this.socket.on("connect", () => {
        this.socket.emit("watch_ticket", { ticket_id: this.ticketId }, () => this.onChange());
      });
      for (const ev of ["queue_position", "called"]) {
        this.socket.on(ev, (e) => { if (!e?.ticket_id || e.ticket_id === this.ticketId) this.onChange(e); });
      }
    } catch { /* polling still works */ }
  }

  stop() { this.socket?.disconnect(); this.socket = null; }
}
