// The Quick Start demo page (examples/static/index.html) in a real browser: Debian's headless
// Chromium, driven by playwright-core, clicks the page's buttons and checks what its two panels
// show, so the page, the served socket.io client, the cookies and the shared session are
// proven together the way a person would use them.
//
//   node browser.mjs http://127.0.0.1:3000 ../output/browser.png
//
// It prints one line per check, takes a full-page screenshot to the given path at the end
// (and on failure, before exiting 1), and exits non-zero at the first failure. Every wait is
// bounded (STEP_TIMEOUT_MS) and so is the whole run (RUN_TIMEOUT_MS), so it never hangs.
//
// Steps (SPEC ids from SPEC.md):
//  1. the page loads and its socket connects (#status "connected"); the handshake carries no
//     session yet;
//  2. HTTP +1 creates the session: #http shows httpCount 1 and a sessionId (H1, H4, H6);
//  3. WS +1: #ws shows wsCount 1, httpCount 1 and the SAME sessionId as #http: the socket,
//     connected before the session existed, finds it through the client id (S1, S2, S3);
//  4. WS +1 again: wsCount 2 (S3);
//  5. HTTP read: #http sees wsCount 2, written over the socket (H3, S3);
//  6. Set user "ada": visible in #http, after an HTTP read and over the socket (WS read);
//  7. Reset: the session is destroyed; both panels show no session and counts 0; the page got
//     exactly `{ ok: true, from: "http:reset" }`, then an /api/read with this client id and no
//     session, and the socket's exact `{ ok: false, error: "missing-session" }` (H4, S2, S4);
// And at each stage the browser holds exactly the expected cookies, each HttpOnly, and
// `document.cookie` is empty: the page's script cannot read them (H5, H8).
//  8. HTTP +1 again: a NEW sessionId with httpCount 1, and WS read shows that new id (H2 d,
//     H4, S2).
// Before each click the panel it updates is blanked (every field set to "?"), so a check can
// only pass on what that click rendered, never on what an earlier one left.

import { mkdirSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { dirname, resolve } from "node:path";
import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 5_000;
const RUN_TIMEOUT_MS = 60_000;
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];
const FIELDS = ["sessionId", "httpCount", "wsCount", "user"];
const PENDING = "?";
const POLL_MS = 25;
const SESSION_COOKIE = "app.sid";
const CLIENT_COOKIE = "app.sid.cid";
/** The socket's exact reply without a session (S4): the page renders every `{ ok: false }` as "none". */
const MISSING = { ok: false, error: "missing-session" };

class CheckFailed extends Error {}

const started = Date.now();
let checks = 0;
let browser;
let page;
let screenshotPath;
const pageErrors = [];

function pass(label) {
  checks += 1;
  console.log(`ok   ${label}`);
}

/** Rejects when `promise` has not settled within `ms`. */
function within(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const selector = (panel, field) => `#${panel} [data-field="${field}"]`;

/** `{ sessionId, httpCount, wsCount, user }` as `panel` shows them now. */
async function panelValues(panel) {
  return within(
    page.evaluate(
      ({ panel, fields }) =>
        Object.fromEntries(
          fields.map((f) => [f, document.querySelector(`#${panel} [data-field="${f}"]`)?.textContent ?? null]),
        ),
      { panel, fields: FIELDS },
    ),
    `read the #${panel} panel`,
  );
}

/** Sets every field of `panel` to "?", so the next check waits for a fresh render. */
async function blank(panel) {
  await within(
    page.evaluate(
      ({ panel, pending }) => {
        for (const dd of document.querySelectorAll(`#${panel} [data-field]`)) dd.textContent = pending;
      },
      { panel, pending: PENDING },
    ),
    `blank the #${panel} panel`,
  );
}

/** Whether `text` matches `want`: a string (exact), an array (one of them) or a predicate. */
function matches(text, want) {
  if (typeof want === "function") return want(text);
  return [want].flat().includes(text);
}

/**
 * Polls (bounded) until `panel` shows `expected`, a map from field to what `matches` takes.
 * Returns the panel's values.
 */
async function expectPanel(label, panel, expected) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let now;
  for (;;) {
    now = await panelValues(panel);
    if (Object.entries(expected).every(([field, want]) => now[field] !== null && matches(now[field], want))) break;
    if (Date.now() >= deadline) {
      const want = Object.fromEntries(
        Object.entries(expected).map(([f, w]) => [f, typeof w === "function" ? w.toString() : w]),
      );
      throw new CheckFailed(
        `${label}: after ${STEP_TIMEOUT_MS} ms #${panel} shows ${JSON.stringify(now)}, expected ${JSON.stringify(want)}`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  pass(label);
  return now;
}

/** Blanks `panels`, clicks `#id`, and returns once the click was dispatched. */
async function click(id, ...panels) {
  for (const panel of panels) await blank(panel);
  await page.click(`#${id}`, { timeout: STEP_TIMEOUT_MS });
}

const show = (v) => JSON.stringify(v);

function eq(label, actual, expected) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new CheckFailed(`${label}: expected ${show(expected)}, got ${show(actual)}`);
  }
  pass(label);
}

/**
 * Wraps the page's own `socket.emit` so that every ack the page gets is also kept, as it came,
 * in `window.__acks` (`{ event, reply }`): the panels only show a rendering of it.
 */
async function recordAcks() {
  await within(
    page.evaluate(() => {
      window.__acks = [];
      const emit = socket.emit.bind(socket);
      socket.emit = (event, ...args) => {
        const ack = args.at(-1);
        if (typeof ack === "function") {
          args[args.length - 1] = (reply) => {
            window.__acks.push({ event, reply });
            ack(reply);
          };
        }
        return emit(event, ...args);
      };
    }),
    "wrap the page's socket.emit",
  );
}

/** The acks the page got since the last call (and forgets them). */
async function takeAcks() {
  return within(
    page.evaluate(() => window.__acks.splice(0)),
    "read the page's acks",
  );
}

/** Every JSON body the page fetched from /api/*, `{ path, body }`, in order of arrival. */
const apiReplies = [];

function takeApiReplies() {
  return apiReplies.splice(0);
}

/**
 * The cookies are HttpOnly (H5, H8): the browser holds them (`present` names; the others
 * must be absent), each flagged HttpOnly, and the page's script sees none of them.
 */
async function expectHttpOnlyCookies(label, present) {
  const cookies = await within(page.context().cookies(), "read the browser's cookies");
  const names = cookies.map((c) => c.name).sort();
  eq(`${label}: the browser holds exactly ${show(present)}`, names, [...present].sort());
  const notHttpOnly = cookies.filter((c) => c.httpOnly !== true).map((c) => c.name);
  eq(`${label}: every cookie is HttpOnly`, notHttpOnly, []);
  const visible = await within(page.evaluate(() => document.cookie), "read document.cookie");
  eq(`${label}: document.cookie is empty (the page's script sees no cookie)`, visible, "");
}

async function screenshot() {
  if (!page || !screenshotPath) return false;
  mkdirSync(dirname(screenshotPath), { recursive: true });
  await within(
    page.screenshot({ path: screenshotPath, fullPage: true, timeout: STEP_TIMEOUT_MS }),
    "screenshot",
    STEP_TIMEOUT_MS + 1_000,
  );
  console.log(`screenshot: ${screenshotPath}`);
  return true;
}

async function closeBrowser() {
  if (!browser) return;
  const b = browser;
  browser = undefined;
  await within(b.close(), "close the browser").catch((err) => console.error(`closing the browser: ${err.message}`));
}

async function scenario(base) {
  browser = await within(
    chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: STEP_TIMEOUT_MS }),
    `launch ${CHROMIUM}`,
    STEP_TIMEOUT_MS + 1_000,
  );
  const context = await within(browser.newContext({ viewport: { width: 1100, height: 700 } }), "new context");
  page = await within(context.newPage(), "new page");
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    const url = msg.location()?.url ?? "";
    // The demo page has no icon and the examples serve none: the browser's own
    // /favicon.ico request answering 404 is not the page's error.
    if (msg.type() === "error" && new URL(url || base, base).pathname !== "/favicon.ico") {
      pageErrors.push(`console.error: ${msg.text()}${url ? ` (${url})` : ""}`);
    }
  });
  page.on("response", (res) => {
    const path = new URL(res.url()).pathname;
    if (!path.startsWith("/api/")) return;
    const url = new URL(res.url());
    apiReplies.push(
      res
        .json()
        .then((body) => ({ path: url.pathname + url.search, status: res.status(), body }))
        .catch((err) => ({ path: url.pathname + url.search, status: res.status(), error: err.message })),
    );
  });
  page.on("requestfailed", (req) => pageErrors.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));

  // 1. load, socket connected
  const res = await page.goto(base, { waitUntil: "load", timeout: STEP_TIMEOUT_MS });
  if (!res || res.status() !== 200) throw new CheckFailed(`GET ${base}: status ${res?.status()}`);
  pass("the page loads (200)");
  try {
    await page.waitForFunction(() => document.getElementById("status")?.textContent === "connected", null, {
      timeout: STEP_TIMEOUT_MS,
    });
  } catch {
    const status = await page.textContent("#status").catch(() => "(unreadable)");
    throw new CheckFailed(`#status should be "connected", shows ${JSON.stringify(status)}`);
  }
  pass('#status shows "connected" (the served socket.io client connected)');
  await recordAcks();
  await expectHttpOnlyCookies("after the page loaded", [CLIENT_COOKIE]);

  // 2. HTTP +1 creates the session
  await click("http-inc", "http");
  const created = await expectPanel("HTTP +1: #http httpCount 1 and a sessionId", "http", {
    httpCount: "1",
    wsCount: "0",
    sessionId: (t) => /^[A-Za-z0-9_-]{16,}$/.test(t),
  });
  const sid = created.sessionId;
  const [createdReply] = await Promise.all(takeApiReplies());
  const clientId = createdReply?.body?.clientId;
  if (typeof clientId !== "string" || clientId.length === 0) {
    throw new CheckFailed(`HTTP +1 answered no clientId: ${show(createdReply)}`);
  }
  await expectHttpOnlyCookies("after HTTP +1", [CLIENT_COOKIE, SESSION_COOKIE]);

  // 3. WS +1: the socket finds the session HTTP created after it connected
  await click("ws-inc", "ws");
  await expectPanel("WS +1: #ws wsCount 1, httpCount 1, the SAME sessionId as #http", "ws", {
    sessionId: sid,
    httpCount: "1",
    wsCount: "1",
  });

  // 4. WS +1 again
  await click("ws-inc", "ws");
  await expectPanel("WS +1 again: #ws wsCount 2", "ws", { sessionId: sid, httpCount: "1", wsCount: "2" });

  // 5. HTTP read sees the socket's writes
  await click("http-read", "http");
  await expectPanel("HTTP read: #http sees wsCount 2 written over the socket", "http", {
    sessionId: sid,
    httpCount: "1",
    wsCount: "2",
  });

  // 6. Set user, seen by HTTP and by the socket
  await within(page.fill("#user", "ada", { timeout: STEP_TIMEOUT_MS }), "fill #user");
  await click("set-user", "http");
  await expectPanel('Set user: #http user "ada"', "http", { sessionId: sid, user: "ada", wsCount: "2" });
  await click("http-read", "http");
  await expectPanel('HTTP read: #http user "ada"', "http", { sessionId: sid, user: "ada", httpCount: "1" });
  await click("ws-read", "ws");
  await expectPanel('WS read: #ws user "ada" (set over HTTP)', "ws", { sessionId: sid, user: "ada", wsCount: "2" });

  // 7. Reset destroys the session for both channels
  takeApiReplies();
  await takeAcks();
  await click("reset", "http", "ws");
  const zero = { httpCount: "0", wsCount: "0", user: "-" };
  await expectPanel('Reset: #http shows sessionId "none" and counts 0', "http", { sessionId: "none", ...zero });
  await expectPanel('Reset: #ws shows sessionId "none" and counts 0', "ws", { sessionId: "none", ...zero });
  // What the page got, exactly: the panels render any `{ ok: false }` and any empty session
  // the same way.
  const replies = await Promise.all(takeApiReplies());
  eq("Reset: the page's HTTP replies, exactly (H4)", replies, [
    { path: "/api/session?reset=1", status: 200, body: { ok: true, from: "http:reset" } },
    { path: "/api/read", status: 200, body: { ok: true, clientId, sessionId: null, session: {} } },
  ]);
  eq("Reset: the socket's reply is exactly the missing-session one (S2, S4)", await takeAcks(), [
    { event: "session:get", reply: MISSING },
  ]);
  await expectHttpOnlyCookies("after Reset (the session cookie is cleared, the client cookie kept: H8)", [
    CLIENT_COOKIE,
  ]);

  // 8. A new session, seen by the still-open socket
  await click("http-inc", "http");
  const renewed = await expectPanel("HTTP +1 after the reset: a NEW sessionId, httpCount 1", "http", {
    httpCount: "1",
    wsCount: "0",
    user: "-",
    sessionId: (t) => /^[A-Za-z0-9_-]{16,}$/.test(t),
  });
  if (renewed.sessionId === sid) throw new CheckFailed(`the session id after the reset is the old one (${sid})`);
  pass("the new sessionId differs from the first");
  await expectHttpOnlyCookies("after the new session", [CLIENT_COOKIE, SESSION_COOKIE]);
  await click("ws-read", "ws");
  await expectPanel("WS read: #ws shows the NEW sessionId", "ws", {
    sessionId: renewed.sessionId,
    httpCount: "1",
    wsCount: "0",
  });

  const status = await page.textContent("#status", { timeout: STEP_TIMEOUT_MS });
  if (status !== "connected") throw new CheckFailed(`#status at the end: ${JSON.stringify(status)}`);
  pass("the socket stayed connected throughout");
  if (pageErrors.length) throw new CheckFailed(`errors on the page:\n  ${pageErrors.join("\n  ")}`);
  pass("no JavaScript error on the page");
}

async function main() {
  const [base, shot] = process.argv.slice(2);
  if (!base || !shot) {
    console.error("usage: node browser.mjs <baseUrl> <screenshotPath>");
    process.exit(2);
  }
  screenshotPath = resolve(shot);
  const watchdog = setTimeout(async () => {
    console.log(`FAIL the whole run took more than ${RUN_TIMEOUT_MS} ms`);
    await screenshot().catch(() => {});
    process.exit(1);
  }, RUN_TIMEOUT_MS);
  try {
    await scenario(base);
    await screenshot();
    console.log(`PASS ${checks} checks in ${Date.now() - started} ms`);
    await closeBrowser();
    clearTimeout(watchdog);
  } catch (err) {
    console.log(`FAIL ${err instanceof CheckFailed ? err.message : err.stack}`);
    if (pageErrors.length) console.log(`page errors:\n  ${pageErrors.join("\n  ")}`);
    await screenshot().catch((e) => console.log(`no screenshot: ${e.message}`));
    await closeBrowser();
    process.exit(1);
  }
}

await main();
