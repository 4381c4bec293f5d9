// Chat and queue events over Socket.IO (path /socket.io). A message is sent with a client_id and
// retried until the server acks it (the server stores it once); after a reconnect the client asks
// for the history after the last id it has, so nothing is lost or shown twice.
import { io } from "../vendor/socket.io.esm.min.js";
import { uuid } from "./dom.js";

const ACK_TIMEOUT_MS = 5000;

function connect(token) {
  return io({ path: "/socket.io", auth: { token }, transports: ["websocket"], reconnectionDelayMax: 3000 });
}

export class Chat extends EventTarget {
  constructor(token, consultationId) {
    super();
    this.token = token;
    this.cid = consultationId;
    this.socket = null;
    this.lastId = null;
    this.seen = new Set();
    this.pending = new Map(); // client_id → {text}
    this.joined = false;
  }

  start() {
    this.socket = connect(this.token);
    this.socket.on("connect", () => this._join());
    this.socket.on("disconnect", () => { this.joined = false; this._emit("state", { connected: false }); });
    this.socket.on("connect_error", () => this._emit("state", { connected: false }));
    this.socket.on("message", (m) => this._receive(m));
    this.socket.on("typing", (e) => this._emit("typing", e));
    this.socket.on("knock", (e) => this._emit("knock", e));
  }

  stop() { this.socket?.disconnect(); this.socket = null; }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  async _join() {
    try {
      const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("join", { consultation_id: this.cid });
      if (!ack?.ok) { this._emit("error", ack); return; }
      this.joined = true;
      if (this.lastId === null) (ack.history || []).forEach((m) => this._receive(m));
      else {
        const more = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("history",
          { consultation_id: this.cid, after_id: this.lastId });
        (more?.messages || []).forEach((m) => this._receive(m));
      }
      this._emit("state", { connected: true });
      for (const [clientId, p] of this.pending) this._trySend(clientId, p.text);
    } catch (e) {
      this._emit("state", { connected: false });
    }
  }

  _receive(m) {
    if (!m || m.consultation_id && m.consultation_id !== this.cid) return;
    if (this.seen.has(m.id)) return;
    this.seen.add(m.id);
    this.lastId = m.id;
    if (m.client_id && this.pending.has(m.client_id)) {
      this.pending.delete(m.client_id);
      this._emit("delivered", { client_id: m.client_id, id: m.id, ts: m.ts });
      return;
    }
    this._emit("message", m);
  }

  /** Shows the message as pending at once; resolves when the server has stored it. */
  send(text) {
    const clientId = uuid();
    this.pending.set(clientId, { text });
    this._emit("pending", { client_id: clientId, text });
    if (this.joined) this._trySend(clientId, text);
    return clientId;
  }

  async _trySend(clientId, text) {
    try {
      const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("message",
        { consultation_id: this.cid, client_id: clientId, text });
      if (ack?.error) { this.pending.delete(clientId); this._emit("failed", { client_id: clientId, ...ack }); return; }
      if (!this.pending.has(clientId)) return;
      this.pending.delete(clientId);
      this.seen.add(ack.id);
      this.lastId = ack.id;
      this._emit("delivered", { client_id: clientId, id: ack.id, ts: ack.ts });
    } catch {
      // no ack in time: retried on the next (re)join, or now if still connected
      if (this.joined && this.pending.has(clientId)) setTimeout(() => this._trySend(clientId, text), 1000);
    }
  }

  typing() { if (this.joined) this.socket.emit("typing", { consultation_id: this.cid }); }
}

/** Queue events for a waiting citizen (queue_position, called): a hint to look again at once. */
export class QueueEvents {
  constructor(token, ticketId, onChange) {
    this.token = token;
    this.ticketId = ticketId;
    this.onChange = onChange;
    this.socket = null;
  }

  start() {
    try {
      this.socket = connect(this.token);
      for (const ev of ["queue_position", "called"]) this.socket.on(ev, () => this.onChange());
    } catch { /* polling still works */ }
  }

  stop() { this.socket?.disconnect(); this.socket = null; }
}
