// Reading the SFU's SDP. The SFU keeps the payload types and header extension ids it negotiated with us
// (media/aiortc_passthrough.py `keep_negotiated_numbering`), so the client sends and applies SDP unchanged.

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
