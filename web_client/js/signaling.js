// WebRTC and the signaling WebSocket protocol (docs/protocol.md): hello → welcome (lobby|admitted),
// the client's first offer once admitted, server offers for renegotiation (the client is the polite
// peer and rolls back on glare), trickle candidates, participants, ended. A dropped socket or a
// failed peer connection reconnects with the session token into the same consultation.

import { watchInbound } from "./media.js";

const FATAL_CLOSE = (code) => code >= 4400 && code < 4500;
const MAX_BACKOFF_MS = 5000;

export class Call extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.consultationId
   * @param {string} o.token a JWT, a session token or an invite token (spent on first use)
   * @param {string} [o.displayName]
   * @param {MediaStream|null} [o.localStream] camera and microphone
   * @param {() => Promise<string|null>} [o.resolveSignalUrl] asks the REST API where the consultation's
   *   media lives (its `signal_url`); called before every (re)connect, so a client whose node died is
   *   sent to the node that took the consultation over
   */
  constructor({ consultationId, token, displayName = "", localStream = null, resolveSignalUrl = null }) {
    super();
    this.cid = consultationId;
    this.resolveSignalUrl = resolveSignalUrl;
    this.signalUrl = null; // set by a `wrong_node` redirect
    this.token = token;
    this.sessionToken = null;
    this.displayName = displayName;
    this.localStream = localStream;
    this.extra = new Map(); // label → MediaStream (e.g. "exam-camera")
    this.state = "idle";
    this.participantId = null;
    this.role = null;
    this.iceServers = [];
    this.participants = [];
    this.ws = null;
    this.pc = null;
    this.ops = Promise.resolve();
    this.backoff = 500;
    this.retryTimer = null;
    this.everAdmitted = false;
  }

  // --- public ----------------------------------------------------------------------------------

  start() { this._open(); }

  leave() {
    this._send({ type: "leave" });
    this._setState("left");
    this._teardown();
  }

  /** The lobby decision arrived another way (the REST view): same as the server's `denied`. */
  denied() {
    this._setState("denied");
    this._teardown();
  }

  /** Mute or unmute the microphone. */
  setMuted(muted) {
    this.localStream?.getAudioTracks().forEach((tr) => { tr.enabled = !muted; });
  }

  /** Camera off (audio only): the camera track stops sending pictures. */
  setCameraOff(off) {
    this.localStream?.getVideoTracks().forEach((tr) => { tr.enabled = !off; });
  }

  /** What is switched off here ({audio_off, video_off}); sent now and again after every (re)admission,
   * so the others' tiles show "microphone off" / "camera off". */
  setMediaState(state) {
    this.mediaState = state;
    if (this.state === "admitted") this._send({ type: "media_state", ...state });
  }

  /** Another camera or microphone (device choice, front/back): the sender keeps its m-line, so no
   * renegotiation; the mute / camera-off state carries over. Returns false without a sender to reuse. */
  async replaceLocalTrack(kind, track) {
    if (!this.localStream) this.localStream = new MediaStream();
    const old = kind === "audio" ? this.localStream.getAudioTracks()[0] : this.localStream.getVideoTracks()[0];
    if (old) { track.enabled = old.enabled; this.localStream.removeTrack(old); }
    this.localStream.addTrack(track);
    const sender = this.pc?.getSenders().find((s) => s.track ? s.track === old : false)
      || this.pc?.getTransceivers().find((t) => t.sender.track?.kind === kind && t.sender.track === old)?.sender;
    if (sender) await sender.replaceTrack(track);
    old?.stop();
    return !!sender;
  }

  /** Publish or withdraw an extra camera with a label (the nurse's "exam-camera"). */
  async setExtraStream(label, stream) {
    const old = this.extra.get(label);
    if (old && this.pc) {
      for (const sender of this.pc.getSenders()) {
        if (sender.track && old.getTracks().includes(sender.track)) this.pc.removeTrack(sender);
      }
    }
    if (stream) this.extra.set(label, stream); else this.extra.delete(label);
    // A new m-line of its own: addTrack() would reuse the receive-only m-line of a track the SFU
    // forwards to us, and the SFU does not take media on those.
    if (stream && this.pc) {
      stream.getTracks().forEach((tr) => {
        const t = this.pc.addTransceiver(tr, { direction: "sendonly", streams: [stream] });
        preferDetail(t.sender);
      });
    }
  }

  /** Which label a local track is published under (the server learns it from the offer), by track id
   * and by mid. */
  trackLabels() {
    const labels = {};
    for (const [label, stream] of this.extra) {
      labels[stream.id] = label;
      stream.getTracks().forEach((tr) => { labels[tr.id] = label; });
    }
    this.localStream?.getVideoTracks().forEach((tr) => { labels[tr.id] = "camera"; });
    this.localStream?.getAudioTracks().forEach((tr) => { labels[tr.id] = "microphone"; });
    // By mid too: the SFU (aiortc) does not learn our track ids, but it knows its m-lines.
    for (const t of this.pc?.getTransceivers() || []) {
      const id = t.sender.track?.id;
      if (t.mid !== null && id && labels[id]) labels[t.mid] = labels[id];
    }
    return labels;
  }

  async stats() { return this.pc ? this.pc.getStats() : null; }

  // --- socket ----------------------------------------------------------------------------------

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  _setState(state, detail = {}) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", { state, ...detail });
  }

  /** The WebSocket URL for a `signal_url` (a path on this origin or another node's base URL). */
  _wsUrl(url) {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    if (!url) url = `/api/v1/consultations/${this.cid}/signal`;
    if (url.startsWith("/")) return `${proto}://${location.host}${url}`;
    return url.replace(/^http/, "ws");
  }

  async _open() {
    clearTimeout(this.retryTimer);
    let url = this.signalUrl;
    this.signalUrl = null; // a redirect is used once; after that the REST API says where to go
    if (!url && this.resolveSignalUrl) {
      try { url = await this.resolveSignalUrl(); } catch { url = null; }
    }
    const ws = new WebSocket(this._wsUrl(url));
    this.ws = ws;
    // A fresh chain of message handlers per socket: a handler of the old one may wait forever (an offer being
    // applied when its peer connection was closed: WebRTC never settles that promise), and chained behind it
    // the new socket's welcome would never be handled.
    this.ops = Promise.resolve();
    if (this.state !== "reconnecting") this._setState("connecting");
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "hello", token: this.sessionToken || this.token,
        display_name: this.displayName, lang: document.documentElement.lang || "nb" }));
    };
    ws.onmessage = (e) => {
      if (this.ws !== ws) return; // a socket we already left
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      this.ops = this.ops.then(() => this._onMessage(msg)).catch((err) => console.warn("signaling", err));
    };
    ws.onclose = (e) => { if (this.ws === ws) this._onClose(e); };
  }

  _send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  _onClose(e) {
    this.ws = null;
    if (["ended", "left", "denied", "failed"].includes(this.state)) return;
    const redirected = e.code === 4421 && this.signalUrl; // wrong_node: go where the server said
    if (FATAL_CLOSE(e.code) && !redirected && !(this.sessionToken && e.code !== 4403)) {
      this._setState("failed", { code: e.code, reason: e.reason });
      this._teardown();
      return;
    }
    this._reconnect();
  }

  /** Back into the same consultation: a new socket (session token) and a new peer connection; `now`
   * skips the backoff (a network change seen by watchInbound: the server is fine, our address is not). */
  _reconnect(now = false) {
    if (["ended", "left", "denied", "failed"].includes(this.state)) return;
    this._setState("reconnecting");
    this._closePeer();
    if (this.ws) { const ws = this.ws; this.ws = null; ws.onclose = null; ws.close(); }
    clearTimeout(this.retryTimer);
    if (!navigator.onLine) return; // retryNow() when the browser is back online
    this.retryTimer = setTimeout(() => this._open(), now ? 0 : this.backoff);
    if (!now) this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
  }

  /** The browser says the network is gone (or changed): drop the connection now, come back when online. */
  networkLost() {
    if (["connecting", "lobby", "admitted"].includes(this.state)) this._reconnect();
  }

  /** The page came back online: try at once instead of waiting for the backoff. */
  retryNow() {
    if (this.state !== "reconnecting") {
      // The socket may look open although the network was away: check with a fresh one.
      if (this.state === "admitted" && this.pc?.iceConnectionState !== "connected" && this.pc?.iceConnectionState !== "completed") {
        this._reconnect();
      }
      return;
    }
    this.backoff = 500;
    clearTimeout(this.retryTimer);
    this._open();
  }

  async _onMessage(msg) {
    switch (msg.type) {
      case "welcome":
        this.participantId = msg.participant_id;
        this.role = msg.role;
        this.iceServers = msg.ice_servers || [];
        if (msg.session_token) this.sessionToken = msg.session_token;
        this.backoff = 500;
        this._emit("welcome", msg);
        if (msg.state === "admitted") await this._admitted();
        else this._setState("lobby");
        break;
      case "admitted":
        if (msg.ice_servers) this.iceServers = msg.ice_servers; // TURN credentials come only once admitted
        await this._admitted();
        break;
      case "session_token": // a fresh short-lived session token while connected
        if (msg.session_token) this.sessionToken = msg.session_token;
        this._emit("welcome", { session_token: msg.session_token });
        break;
      case "denied":
        this.denied();
        break;
      case "answer":
        if (this.pc && this.pc.signalingState === "have-local-offer") {
          await this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
        }
        break;
      case "offer":
        await this._onOffer(msg.sdp);
        break;
      case "candidate":
        if (this.pc && msg.candidate) {
          try { await this.pc.addIceCandidate(msg.candidate); } catch (e) { console.warn("candidate", e); }
        }
        break;
      case "participants":
        this.participants = msg.participants || [];
        this._emit("participants", this.participants);
        break;
      case "ended":
        this._setState("ended", { outcome: msg.outcome ?? null });
        this._teardown();
        break;
      case "error":
        if (msg.code === "wrong_node" && msg.signal_url) {
          // The consultation's media lives on another server process: reconnect there at once.
          this.signalUrl = msg.signal_url;
          break;
        }
        if (msg.code === "denied") { // refused at hello (e.g. coming back after a deny we missed)
          this.denied();
          break;
        }
        this._emit("error", msg);
        break;
      default:
        this._emit(msg.type, msg);
    }
  }

  // --- peer connection ---------------------------------------------------------------------------

  async _admitted() {
    this.everAdmitted = true;
    this._setState("admitted");
    if (this.mediaState) this._send({ type: "media_state", ...this.mediaState });
    if (this.pc) return;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.onicecandidate = (e) => this._send({ type: "candidate", candidate: e.candidate ? e.candidate.toJSON() : null });
    pc.ontrack = (e) => this._emit("track", { track: e.track, streams: e.streams, mid: e.transceiver?.mid });
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      this._emit("connection", pc.connectionState);
      // A network change (Wi-Fi to 4G) leaves this connection's address dead: a new socket and peer
      // connection (the server replaces the old one) bring media back in well under a second on a LAN.
      if (pc.connectionState === "failed" || pc.connectionState === "disconnected") this._reconnect();
    };
    this.stopWatch = watchInbound(pc, {
      expecting: () => this.participants.some((p) => p.id !== this.participantId && p.presence === "connected"
        && p.tracks?.length && !(p.audio_off && p.video_off)),
      onLost: (reason) => { if (this.pc === pc) { this._emit("network", { reason }); this._reconnect(true); } },
    });
    pc.onnegotiationneeded = () => { this.ops = this.ops.then(() => this._offer(pc)).catch((e) => console.warn(e)); };
    let published = 0;
    for (const stream of [this.localStream, ...this.extra.values()]) {
      if (!stream) continue;
      for (const tr of stream.getTracks()) {
        pc.addTransceiver(tr, { direction: "sendrecv", streams: [stream] });
        published++;
      }
    }
    if (!published) {
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
  }

  async _offer(pc) {
    if (this.pc !== pc || pc.signalingState !== "stable") return;
    await pc.setLocalDescription(await pc.createOffer());
    this._send({ type: "offer", sdp: pc.localDescription.sdp, track_labels: this.trackLabels() });
  }

  async _onOffer(sdp) {
    const pc = this.pc;
    if (!pc) return;
    if (pc.signalingState !== "stable") {
      // Glare: the server is impolite, we roll back ours and negotiate it again afterwards.
      await pc.setLocalDescription({ type: "rollback" });
    }
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    this._send({ type: "answer", sdp: pc.localDescription.sdp });
  }

  _closePeer() {
    if (!this.pc) return;
    const pc = this.pc;
    this.pc = null;
    this.stopWatch?.();
    this.stopWatch = null;
    pc.onconnectionstatechange = null;
    pc.onnegotiationneeded = null;
    pc.close();
    this._emit("reset", {});
  }

  _teardown() {
    clearTimeout(this.retryTimer);
    this._closePeer();
    if (this.ws) { const ws = this.ws; this.ws = null; ws.onclose = null; try { ws.close(1000); } catch { /* closed */ } }
  }
}

/** Receive quality of one remote track from two getStats() snapshots: "good" | "fair" | "poor". */
export function qualityOf(prev, cur) {
  if (!prev || !cur) return null;
  const received = (cur.packetsReceived || 0) - (prev.packetsReceived || 0);
  const lost = (cur.packetsLost || 0) - (prev.packetsLost || 0);
  if (received <= 0 && lost <= 0) return "poor";
  const loss = lost / Math.max(1, received + lost);
  const jitter = cur.jitter || 0;
  if (loss > 0.08 || jitter > 0.1) return "poor";
  if (loss > 0.02 || jitter > 0.04) return "fair";
  return "good";
}

/** The exam camera: keep the resolution (a wound, a rash) and let the frame rate drop when bandwidth is
 * short; the room camera keeps the browser's default (frame rate first). */
function preferDetail(sender) {
  try {
    const params = sender.getParameters();
    params.degradationPreference = "maintain-resolution";
    sender.setParameters(params).catch(() => {});
  } catch { /* not every browser lets a page choose */ }
}
