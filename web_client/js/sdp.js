// SDP adjustments for the SFU. nettlege's SFU is aiortc (1.16), whose createOffer() renumbers every
// m-line with its own payload types and header extension ids, including the m-lines the browser
// itself offered. Chromium then switches the payload types it sends on its camera and microphone,
// while the SFU may already have started its receivers with the old numbers; the published tracks
// then never arrive (about every other join), and a reassigned extension id is refused outright.
// So our offers use the SFU's own payload types and extension ids from the start, and (should the
// browser refuse that) in the SFU's offers the m-lines we negotiated before keep our payload types.

const SFU_EXTENSION_IDS = {
  "urn:ietf:params:rtp-hdrext:sdes:mid": 1,
  "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 2,
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 3,
};

/** Our offer: the SFU's ids for the extensions it knows, every other extension moved out of the way. */
export function alignHeaderExtensions(sdp) {
  const re = /^a=extmap:(\d+)(\/\w+)? (\S+)(.*)$/gm;
  const ids = new Map(Object.entries(SFU_EXTENSION_IDS));
  let next = 4;
  for (const m of sdp.matchAll(re)) {
    if (!ids.has(m[3])) ids.set(m[3], next++);
  }
  if (next > 15) return sdp; // would need two-byte ids; leave the offer as it is
  return sdp.replace(re, (_all, _id, dir = "", uri, rest) => `a=extmap:${ids.get(uri)}${dir} ${uri}${rest}`);
}

function splitSections(sdp) {
  const lines = sdp.split(/\r\n/);
  const head = [];
  const sections = [];
  for (const line of lines) {
    if (line.startsWith("m=")) sections.push([line]);
    else if (sections.length) sections[sections.length - 1].push(line);
    else head.push(line);
  }
  return { head, sections };
}

function midOf(section) {
  const line = section.find((l) => l.startsWith("a=mid:"));
  return line ? line.slice(6) : null;
}

/** payload type → a key that names the codec independently of its number. */
function codecKeys(section) {
  const rtpmap = new Map();
  const fmtp = new Map();
  for (const l of section) {
    let m = l.match(/^a=rtpmap:(\d+) (.+)$/);
    if (m) rtpmap.set(m[1], m[2].toLowerCase());
    m = l.match(/^a=fmtp:(\d+) (.+)$/);
    if (m) fmtp.set(m[1], Object.fromEntries(m[2].split(";").map((kv) => kv.trim().split("=")).map(([k, v]) => [k.toLowerCase(), v])));
  }
  const keys = new Map();
  const base = (pt) => {
    const name = rtpmap.get(pt);
    if (!name) return null;
    const p = fmtp.get(pt) || {};
    if (name.startsWith("h264/")) return `${name}|${(p["profile-level-id"] || "").toLowerCase()}|${p["packetization-mode"] || "0"}`;
    return name.replace(/\/1$/, "");
  };
  for (const pt of rtpmap.keys()) {
    const name = rtpmap.get(pt);
    if (name.startsWith("rtx/")) {
      const apt = (fmtp.get(pt) || {}).apt;
      const b = apt ? base(apt) : null;
      if (b) keys.set(pt, `rtx|${b}`);
    } else {
      keys.set(pt, base(pt));
    }
  }
  return keys;
}

/** Renumber (and keep only) the payload types in `map` (old → new) in one m-section. */
function remap(section, map) {
  const [m, ...rest] = section;
  const parts = m.split(" ");
  const formats = parts.slice(3).filter((pt) => map.has(pt)).map((pt) => map.get(pt));
  const kept = [];
  for (const l of rest) {
    const a = l.match(/^a=(rtpmap|fmtp|rtcp-fb):(\d+)( .*)?$/);
    if (!a) { kept.push(l); continue; }
    if (!map.has(a[2])) continue;
    let tail = a[3] || "";
    if (a[1] === "fmtp") tail = tail.replace(/apt=(\d+)/, (_x, apt) => `apt=${map.get(apt) ?? apt}`);
    kept.push(`a=${a[1]}:${map.get(a[2])}${tail}`);
  }
  return [[...parts.slice(0, 3), ...formats].join(" "), ...kept];
}

// aiortc's own numbering (aiortc.codecs.CODECS), which its offers always use.
const SFU_PAYLOAD_TYPES = new Map([
  ["opus/48000/2", "96"], ["g722/8000", "9"], ["pcmu/8000", "0"], ["pcma/8000", "8"],
  ["vp8/90000", "97"], ["rtx|vp8/90000", "98"],
  ["h264/90000|42001f|1", "99"], ["rtx|h264/90000|42001f|1", "100"],
  ["h264/90000|42e01f|1", "101"], ["rtx|h264/90000|42e01f|1", "102"],
]);

/** Our offer in the SFU's payload type numbering (codecs it does not know are left out). */
export function useSfuPayloadTypes(sdp) {
  const { head, sections } = splitSections(sdp);
  const out = sections.map((section) => {
    const map = new Map();
    for (const [pt, key] of codecKeys(section)) if (SFU_PAYLOAD_TYPES.has(key)) map.set(pt, SFU_PAYLOAD_TYPES.get(key));
    return map.size ? remap(section, map) : section;
  });
  return [...head, ...out.flat()].join("\r\n");
}

/**
 * The SFU's offer with the payload types of our earlier negotiation on the m-lines it already had
 * (matched by mid); codecs we never negotiated there are dropped from those m-lines.
 */
export function keepPayloadTypes(offerSdp, previousLocalSdp) {
  if (!previousLocalSdp) return offerSdp;
  const prev = new Map();
  for (const section of splitSections(previousLocalSdp).sections) {
    const mid = midOf(section);
    if (mid === null) continue;
    const byKey = new Map();
    for (const [pt, key] of codecKeys(section)) if (key && !byKey.has(key)) byKey.set(key, pt);
    prev.set(mid, byKey);
  }
  const { head, sections } = splitSections(offerSdp);
  const out = sections.map((section) => {
    const ours = prev.get(midOf(section));
    if (!ours) return section;
    const map = new Map(); // offered pt → our pt
    for (const [pt, key] of codecKeys(section)) if (ours.has(key)) map.set(pt, ours.get(key));
    return map.size ? remap(section, map) : section;
  });
  return [...head, ...out.flat()].join("\r\n");
}

/** The msid ("<stream id> <track id>") the remote description gives the m-line with this mid. The SFU
 * sets it to "<participant id> <published track id>"; a browser's receiver track keeps its own id. */
export function msidOf(sdp, mid) {
  if (!sdp || mid === null || mid === undefined) return null;
  for (const section of splitSections(sdp).sections) {
    if (midOf(section) !== String(mid)) continue;
    const line = section.find((l) => l.startsWith("a=msid:"));
    if (!line) return null;
    const [stream, track] = line.slice(7).split(" ");
    return { stream, track };
  }
  return null;
}
