// The three languages: the same keys, the same {placeholders}, and nynorsk that is not bokmål copied.
import { test } from "node:test";
import assert from "node:assert/strict";
import { nb } from "../js/strings/nb.js";
import { nn } from "../js/strings/nn.js";
import { en } from "../js/strings/en.js";
import { browserLang } from "../js/i18n.js";
import { browserFamily, mediaErrorKey } from "../js/views/mediahelp.js";

const placeholders = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test("nynorsk and English have every bokmål key and nothing else", () => {
  assert.deepEqual(Object.keys(nn).sort(), Object.keys(nb).sort());
  assert.deepEqual(Object.keys(en).sort(), Object.keys(nb).sort());
});

test("every translation keeps the placeholders", () => {
  for (const [key, text] of Object.entries(nb)) {
    assert.deepEqual(placeholders(nn[key]), placeholders(text), `nn ${key}`);
    assert.deepEqual(placeholders(en[key]), placeholders(text), `en ${key}`);
  }
});

test("nynorsk is translated, not copied (a few words are the same in both)", () => {
  // Sentences that are written the same in both standards (checked one by one).
  const SAME = new Set(["footer_emergency", "login_with", "back_to_waiting_room", "channel_video_hint",
    "channel_chat_hint", "emergency_hint", "join_queue", "your_position", "eta_soon", "leave_queue", "chat_help",
    "ended_text", "invited_as_interpreter", "invited_as_clinician", "footer_call_113", "emergency_call",
    "turn_alert_title", "alerts_title", "leave_queue_confirm_title", "leave_queue_confirm", "stay_in_queue",
    "export_pdf", "export_text", "chat_help_touch", "code_make", "camera_front", "camera_back", "chat_error_unauthorized"]);
  const long = Object.keys(nb).filter((k) => nb[k].split(" ").length >= 4);
  const same = long.filter((k) => nn[k] === nb[k] && !SAME.has(k));
  assert.deepEqual(same, [], `copied from bokmål: ${same.join(", ")}`);
  for (const word of [/\bikke\b/, /\bhva\b/, /\bhvordan\b/, /\bjeg\b/, /(^|\s)nå(\s|[.,]|$)/]) {
    const hits = Object.keys(nn).filter((k) => word.test(nn[k]));
    assert.deepEqual(hits, [], `bokmål word ${word} in nynorsk`);
  }
});

test("the default language comes from the browser", () => {
  assert.equal(browserLang(["nn-NO", "nb-NO"]), "nn");
  assert.equal(browserLang(["no"]), "nb");
  assert.equal(browserLang(["en-GB", "nb"]), "en");
  assert.equal(browserLang(["de-DE", "fr"]), "nb");
  assert.equal(browserLang(["de-DE", "en-US"]), "en");
});

test("camera guidance: the error's reason and the browser's steps", () => {
  assert.equal(mediaErrorKey({ name: "NotAllowedError" }), "media_refused");
  assert.equal(mediaErrorKey({ name: "NotFoundError" }), "media_not_found");
  assert.equal(mediaErrorKey({ name: "NotReadableError" }), "media_busy");
  assert.equal(mediaErrorKey(new Error("x")), "media_failed");
  const iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
  const android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
  const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
  const edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
  const samsung = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0 Mobile Safari/537.36";
  assert.equal(browserFamily(iphone), "ios");
  assert.equal(browserFamily(android), "chrome_android");
  assert.equal(browserFamily(firefox), "firefox");
  assert.equal(browserFamily(edge), "edge");
  assert.equal(browserFamily(samsung), "samsung");
  for (const family of ["ios", "chrome_android", "firefox", "edge", "samsung", "chrome", "safari", "other"]) {
    for (const dict of [nb, nn, en]) assert.ok(dict[`media_allow_${family}`], family);
  }
});
