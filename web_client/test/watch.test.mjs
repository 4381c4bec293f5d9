// node --test web_client/test/: watchInbound, the client-side trigger for a network change the browser has not
// noticed (run by tests/browser/test_js_units.py). A fake peer connection whose inbound bytes the test sets.
import { test } from "node:test";
import assert from "node:assert/strict";

const listeners = new Map();
globalThis.window = {
  addEventListener: (type, fn) => listeners.set(type, fn),
  removeEventListener: (type) => listeners.delete(type),
};
const connection = new EventTarget();
connection.type = "wifi";
Object.defineProperty(globalThis, "navigator", { value: { connection }, configurable: true });
const { watchInbound } = await import("../js/media.js");

function fakePc() {
  const pc = { connectionState: "connected", audio: 0, video: 0 };
  pc.getStats = async () => new Map([
    ["a", { type: "inbound-rtp", kind: "audio", bytesReceived: pc.audio }],
    ["v", { type: "inbound-rtp", kind: "video", bytesReceived: pc.video }],
    ["t", { type: "transport", bytesReceived: pc.audio + pc.video + 1e6 }],
  ]);
  return pc;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const OPTS = { stallMs: 500, everyMs: 10 };

test("inbound bytes that stop while the other side should send: lost once, as 'stalled'", async () => {
  const pc = fakePc();
  const lost = [];
  watchInbound(pc, { ...OPTS, expecting: () => true, onLost: (r) => lost.push(r) });
  for (let i = 0; i < 10; i++) { pc.audio += 100; pc.video += 1000; await sleep(15); }
  assert.deepEqual(lost, []);
  await sleep(1500);
  assert.deepEqual(lost, ["stalled"]);
  assert.equal(listeners.has("online"), false, "stopped after firing");
});

test("a remote camera off stops only video bytes: audio keeps the call alive, no reconnect", async () => {
  const pc = fakePc();
  const lost = [];
  const stop = watchInbound(pc, { ...OPTS, expecting: () => true, onLost: (r) => lost.push(r) });
  for (let i = 0; i < 70; i++) { pc.audio += 100; await sleep(15); } // video frozen at 0 bytes throughout
  assert.deepEqual(lost, []);
  stop();
});

test("nothing flowing yet, or nobody expected to send: quiet is not lost", async () => {
  const pc = fakePc();
  const lost = [];
  const stop = watchInbound(pc, { ...OPTS, expecting: () => true, onLost: (r) => lost.push(r) });
  await sleep(800); // bytes never moved: no media yet (alone in the room, or still connecting)
  assert.deepEqual(lost, []);
  stop();

  let expecting = true;
  const pc2 = fakePc();
  const stop2 = watchInbound(pc2, { ...OPTS, expecting: () => expecting, onLost: (r) => lost.push(r) });
  for (let i = 0; i < 10; i++) { pc2.audio += 100; await sleep(15); }
  expecting = false; // the other left, or switched camera and microphone off
  await sleep(800);
  assert.deepEqual(lost, []);
  expecting = true; // and the stall is counted from when something should arrive again
  await sleep(80);
  assert.deepEqual(lost, []);
  await sleep(1500);
  assert.deepEqual(lost, ["stalled"]);
  stop2();
});

test("the browser's online event and a new network type are network changes; a new rtt estimate is not", async () => {
  const lost = [];
  watchInbound(fakePc(), { ...OPTS, expecting: () => true, onLost: (r) => lost.push(r) });
  listeners.get("online")();
  assert.deepEqual(lost, ["online"]);

  const stop = watchInbound(fakePc(), { ...OPTS, expecting: () => true, onLost: (r) => lost.push(r) });
  connection.dispatchEvent(new Event("change")); // same type: only a new estimate
  assert.deepEqual(lost, ["online"]);
  connection.type = "cellular";
  connection.dispatchEvent(new Event("change"));
  assert.deepEqual(lost, ["online", "connection"]);
  stop();
});

test("a closed peer connection is not watched", async () => {
  const pc = fakePc();
  const lost = [];
  const stop = watchInbound(pc, { ...OPTS, expecting: () => true, onLost: (r) => lost.push(r) });
  for (let i = 0; i < 5; i++) { pc.audio += 100; await sleep(15); }
  pc.connectionState = "closed";
  await sleep(800);
  assert.deepEqual(lost, []);
  stop();
});
