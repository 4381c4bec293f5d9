"""In-page checks of received media: frames decoded (getStats) and a picture that is not black."""

from __future__ import annotations

from typing import Any

FRAMES_DECODED = """async () => {
  const pc = window.nettlegeCall && window.nettlegeCall.pc;
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
  });
  return frames;
}"""

# Variance of the luma of a remote <video> drawn to a canvas: a black (or frozen single-colour) picture is ~0.
PIXEL_VARIANCE = """(selector) => {
  const videos = [...document.querySelectorAll(selector)].filter(v => v.videoWidth > 0);
  let best = 0;
  for (const v of videos) {
    const c = document.createElement('canvas');
    c.width = 160; c.height = 120;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0, c.width, c.height);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let sum = 0, sq = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      sum += y; sq += y * y; n++;
    }
    const mean = sum / n;
    best = Math.max(best, sq / n - mean * mean + mean);  // variance plus mean: black gives 0
  }
  return best;
}"""


async def frames_decoded(page: Any) -> int:
    return int(await page.evaluate(FRAMES_DECODED))


async def wait_for_more_frames(page: Any, than: int, timeout_ms: int = 20_000) -> None:
    await page.wait_for_function(f"async (before) => ({FRAMES_DECODED})() .then(f => f > before + 10)",
                                 arg=than, timeout=timeout_ms)


async def wait_for_video(page: Any, selector: str = "#remote-videos video", timeout_ms: int = 20_000) -> None:
    """Frames decoded > 0 by getStats() and a non-black picture in a remote <video>."""
    try:
        await page.wait_for_function(FRAMES_DECODED.replace("return frames;", "return frames > 0;"),
                                     timeout=timeout_ms)
        await page.wait_for_function(f"() => ({PIXEL_VARIANCE})({selector!r}) > 10", timeout=timeout_ms)
    except Exception as exc:
        raise AssertionError(f"no picture in {selector}: {await describe_video(page, selector)}") from exc


async def describe_video(page: Any, selector: str) -> dict[str, Any]:
    """What the page has, for a failure message: frames, picture variance, each video's size."""
    return {
        "frames_decoded": await frames_decoded(page),
        "variance": await page.evaluate(f"() => ({PIXEL_VARIANCE})({selector!r})"),
        "videos": await page.evaluate(
            "(sel) => [...document.querySelectorAll(sel)].map(v => [v.videoWidth, v.videoHeight, v.paused, "
            "v.srcObject && v.srcObject.getTracks().map(t => t.readyState + (t.muted ? ' muted' : ''))])",
            selector),
        "inbound": await page.evaluate(
            """async () => { const o = []; const pc = window.nettlegeCall && window.nettlegeCall.pc;
               if (pc) (await pc.getStats()).forEach(s => { if (s.type === 'inbound-rtp')
                 o.push([s.kind, s.mid, s.packetsReceived, s.framesDecoded, s.keyFramesDecoded]); });
               return o; }"""),
    }
