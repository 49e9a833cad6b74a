// End-to-end scenarios for a server that speaks the seed README's Quick Start protocol, driven
// over real TCP by Node's built-in `fetch` (the HTTP side) and the real `socket.io-client`
// (the socket side), once per transport: websocket only, polling only, and polling then
// upgrade to websocket.
//
//   node quick_start_scenario.mjs http://127.0.0.1:3000
//
// It prints one line per check and exits non-zero at the first failure (with KEEP_GOING=1:
// every scenario runs on every transport, each failure printed, exit 1 at the end). Every
// await is bounded (STEP_TIMEOUT_MS), and so is the whole run (RUN_TIMEOUT_MS), so it never
// hangs.
// Its helpers (cookie jar, bounded awaits, checks, socket.io) are in lib.mjs, shared with
// two_nodes.mjs.
//
// It relies on the protocol only, so it runs against any server that implements it (the
// in-process hyper server of tests/socketio_e2e.rs, the poem and salvo examples):
// - cookies: session cookie `app.sid`, client cookie `app.sid.cid` (the Quick Start's `key`
//   and the default `clientKey`);
// - `GET /api/session`: sets `createdAt` once, `httpCount += 1`, answers
//   `{ ok, clientId, sessionId, session }`; `GET /api/session?reset=1` destroys the session
//   and answers `{ ok: true, from: "http:reset" }`;
// - `GET /api/read`: the same JSON, session unchanged; `GET /plain`: never touches the session;
// - socket.io events, each with an ack: `session:get` -> `{ ok: true, sessionId, session }`;
//   `session:inc` -> `wsCount += 1`, same payload; `session:reset` -> session destroyed,
//   `{ ok: true }`; `session:inc-slow (delayMs)` -> like inc, waiting delayMs inside the
//   session handler; a socket without a session gets `{ ok: false, error: "missing-session" }`;
// - a handshake whose `Origin` is foreign is refused: `connect_error` "origin not allowed";
// - `GET /api/login?name=NAME` (NAME: 1..=32 of `[A-Za-z0-9_-]`, else 400
//   `{ ok: false, error: "bad-name" }`): regenerates (new session id AND new client id, H8),
//   sets `user`, answers like `/api/session`; `GET /api/logout` destroys the session and
//   answers `{ ok: true, from: "http:logout" }`;
// - when a session ends, its browser's sockets get the event `session:ended` with
//   `{ reason: "destroyed" | "regenerated" | ... }` and stay connected (S6).
//
// Scenarios (SPEC ids from SPEC.md), each run on every transport:
// 1. socket and HTTP see each other's writes, same sessionId, no bookkeeping fields in the
//    session (S1, S2, S3, H2, H4, H7);
// 2. a socket connected before the session existed (client cookie only, from `/plain`) gets
//    missing-session, then sees the session HTTP creates, then the NEW one after an HTTP
//    reset; the engine.io handshake sets no cookie (S1, S2, S5, H1, H4);
// 3. a socket without cookies gets missing-session for every event and never gets a
//    session; HTTP is unaffected (S4, S5);
// 4. 2 sockets of one browser x 100 concurrent `session:inc` = wsCount exactly +200, each
//    increment saw a distinct count (S3);
// 5. no lost update: HTTP `/api/session` requests run back to back from the moment
//    `session:inc-slow` 600 ms is emitted (at least 20, and until its ack arrives); one of
//    them must wait >= 300 ms for the handler's lock (the proof that both overlapped), the
//    handler saw exactly the HTTP increments before it, and every increment of both sides is
//    kept, exactly (S3, H4, H12);
// 6. `session:reset` over the socket destroys the session; HTTP ignores the dead cookie
//    and the next `/api/session` starts a new session, which the socket then sees
//    (S2, S3, H2 d, H4);
// 7. a foreign `Origin` is refused with `connect_error` "origin not allowed" (S1);
// 8. login and logout reach the sockets: a socket connected before the login hears
//    `session:ended` `regenerated` and gets missing-session from then on; reconnected with
//    the browser's new cookies (same socket object, a new handshake) it is bound to the new
//    session and sees `user`; a socket presenting only the new client cookie never sees the
//    session, not even after an HTTP write; `/api/logout` makes the socket hear `destroyed`
//    and get missing-session, and keeps the client id (H8, S1, S2, S6, H4);
// 9. a client cookie planted before the login (an attacker's, with the attacker's socket
//    open) does not follow the session: the login issues a new client id, the attacker's
//    socket never sees or writes the victim's session (H8, S1, H2);
// 10. bad login names get 400 `bad-name` and change nothing; 32 characters are accepted;
// 11. capture through the mapping: a request carrying only the victim's client cookie (no
//    session cookie) that writes the session (`/api/session`) gets a NEW client id (a
//    Set-Cookie) and a session of its own: creation never moves a held client, so the
//    victim's open socket still reads and writes the victim's session, the victim's HTTP
//    reads are unchanged and the attacker's never show the victim's data (H2, H8, S1, S2);
// 12. two tied pairs trust neither: the attacker's own complete, logged-in pair planted by a
//    sibling subdomain so that it is sent first (`app.sid.cid=<attacker>; app.sid=<attacker>;
//    app.sid.cid=<victim>; app.sid=<victim>`): HTTP reads no session, a socket gets
//    missing-session, an HTTP write starts a new session; the attacker's session is never read
//    or written (no login CSRF), the victim's own is untouched (C4).
//
// The HTTP requests run one after the other within a browser on purpose: like koa-session,
// two overlapping requests of one browser that write the same key are last-writer-wins
// (the per-session lock serialises socket handlers and commits, not HTTP read-modify-write).

import { isDeepStrictEqual } from "node:util";
import {
  Browser,
  CLIENT_COOKIE,
  CheckFailed,
  Checker,
  HandBuiltCookies,
  MISSING,
  SESSION_COOKIE,
  SESSION_ENDED,
  TRANSPORTS,
  ask,
  baseUrl,
  boundRun,
  fail,
  json,
  nextEvent,
  openSocket,
  ready,
  reason,
  reconnect,
  show,
  touch,
  within,
} from "./lib.mjs";

const RUN_TIMEOUT_MS = 50_000;
const FOREIGN_ORIGIN = "http://evil.example";
const SESSION_KEYS = new Set(["createdAt", "httpCount", "wsCount", "user"]);
const BAD_NAME = { ok: false, error: "bad-name" };
const KEEP_GOING = process.env.KEEP_GOING === "1";

/** One scenario run on one transport: prints its checks, owns its sockets. */
class Run extends Checker {
  constructor(base, transport) {
    super(transport.name);
    this.base = base;
    this.origin = new URL(base).origin;
    this.t = transport;
    this.sockets = [];
  }

  browser() {
    return new Browser(this.base);
  }

  /** `GET path` that must answer 200 with a JSON object; returns that object. */
  json(b, path) {
    return json(b, path);
  }

  /** `GET /api/session` answering `ok: true`. */
  touch(b) {
    return touch(b);
  }

  /**
   * A socket.io connection with `cookie` (none when empty) and `origin` (default: the server's,
   * i.e. same origin). Resolves once connected (and, for the upgrade transport, upgraded);
   * rejects on `connect_error` with `err.connectError` set.
   */
  connect({ cookie = "", origin = this.origin } = {}) {
    const socket = openSocket(this.base, this.t, { cookie, origin });
    this.sockets.push(socket);
    return ready(socket, this.t);
  }

  /**
   * What a browser does after `session:ended`: the same socket disconnects and connects
   * again, a new handshake carrying `cookie` (the browser's cookies now).
   */
  async reconnect(socket, cookie) {
    await reconnect(socket, cookie, this.t);
    this.eq("socket reconnected on the expected transport", socket.io.engine.transport.name, this.t.final);
  }

  /**
   * The payload of the next `event` that `socket` receives from now on, bounded; call it
   * before what should cause the event, await it after.
   */
  nextEvent(socket, event, what) {
    return nextEvent(socket, event, what);
  }

  /** A connected socket on the expected transport. */
  async socket(opts) {
    const s = await this.connect(opts);
    this.eq("socket connected on the expected transport", s.io.engine.transport.name, this.t.final);
    return s;
  }

  /** Emits `event` with `args` and an ack; the ack's value. */
  ask(socket, event, ...args) {
    return ask(socket, event, ...args);
  }

  close() {
    for (const s of this.sockets) s.disconnect();
    this.sockets = [];
  }
}

function onlyKnownKeys(session) {
  return Object.keys(session ?? {}).every((k) => SESSION_KEYS.has(k));
}

// -- scenarios --------------------------------------------------------------------------

async function sharedBothWays(r) {
  const b = r.browser();
  const first = await r.touch(b);
  r.eq("HTTP creates the session: httpCount", first.session.httpCount, 1);
  r.ok("HTTP sets createdAt", Number.isFinite(first.session.createdAt), show(first.session));
  r.ok("HTTP reports the clientId", typeof first.clientId === "string" && first.clientId.length > 0);
  r.ok("the browser holds both cookies", b.jar.has(SESSION_COOKIE) && b.jar.has(CLIENT_COOKIE), show([...b.jar.keys()]));

  const s = await r.socket({ cookie: b.cookie() });
  const got = await r.ask(s, "session:get");
  r.eq("S1/S2: session:get ok", got.ok, true);
  r.eq("S2: socket sessionId equals HTTP sessionId", got.sessionId, first.sessionId);
  r.eq("socket sees httpCount written by HTTP", got.session?.httpCount, 1);
  r.eq("socket sees createdAt written by HTTP", got.session?.createdAt, first.session.createdAt);

  const inc = await r.ask(s, "session:inc");
  r.eq("S3: session:inc counts wsCount", inc.session?.wsCount, 1);
  r.eq("session:inc keeps the sessionId", inc.sessionId, first.sessionId);

  const read = await r.json(b, "/api/read");
  r.eq("HTTP /api/read sees wsCount written by the socket", read.session?.wsCount, 1);
  r.eq("HTTP /api/read: same sessionId", read.sessionId, first.sessionId);
  r.eq("HTTP /api/read changes nothing: httpCount", read.session?.httpCount, 1);

  // H11: /api/session writes with Session::update; every write re-sends the session cookie
  // (with the record's TTL), so an active browser's cookie never expires before its record.
  const updated = await b.get("/api/session");
  r.eq("H11: an update's response re-sends the session cookie", [updated.status, updated.setCookies.includes(SESSION_COOKIE)], [200, true]);
  const second = updated.body;
  r.eq("HTTP keeps the socket's write: wsCount", second.session.wsCount, 1);
  r.eq("HTTP counts on: httpCount", second.session.httpCount, 2);
  r.eq("createdAt is set once", second.session.createdAt, first.session.createdAt);
  r.eq("same clientId on every request", second.clientId, first.clientId);
  const again = await r.ask(s, "session:get");
  r.eq("the open socket sees the later HTTP write", again.session?.httpCount, 2);
  r.ok("H7: no bookkeeping fields in the session", onlyKnownKeys(again.session), show(again.session));
}

async function connectedBeforeSession(r) {
  const b = r.browser();
  const plain = await b.get("/plain");
  r.eq("GET /plain answers 200", plain.status, 200);
  r.ok("H1: /plain sets the client cookie", plain.setCookies.includes(CLIENT_COOKIE), show(plain.setCookies));
  r.ok("H3: /plain sets no session cookie", !plain.setCookies.includes(SESSION_COOKIE), show(plain.setCookies));

  const handshake = await within(
    fetch(new URL("/socket.io/?EIO=4&transport=polling", r.base), {
      headers: { cookie: b.cookie(), origin: r.origin },
    }),
    "engine.io polling handshake",
  );
  const open = await within(handshake.text(), "engine.io handshake body");
  r.eq("engine.io handshake answers 200", handshake.status, 200);
  r.eq("S1: the engine.io handshake sets no cookie", handshake.headers.getSetCookie(), []);
  // Close that engine.io session at once (a "1" close packet) instead of leaving it to time out.
  const eioSid = JSON.parse(open.slice(1)).sid;
  const closed = await within(
    fetch(new URL(`/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(eioSid)}`, r.base), {
      method: "POST",
      headers: { "content-type": "text/plain;charset=UTF-8", origin: r.origin },
      body: "1",
    }),
    "engine.io close packet",
  );
  await within(closed.text(), "engine.io close answer");
  r.eq("the engine.io session closes", closed.status, 200);

  const s = await r.socket({ cookie: b.cookie() });
  r.eq("S5: no session yet: session:get", await r.ask(s, "session:get"), MISSING);
  r.eq("S5: no session yet: session:inc", await r.ask(s, "session:inc"), MISSING);

  const created = await r.touch(b);
  r.eq("HTTP creates the session", created.session.httpCount, 1);
  const seen = await r.ask(s, "session:get");
  r.eq("S2: the open socket sees the session created later", seen.sessionId, created.sessionId);
  r.eq("S2: ... with its data", seen.session?.httpCount, 1);
  r.eq("the missing-session inc wrote nothing", seen.session?.wsCount, undefined);

  const reset = await r.json(b, "/api/session?reset=1");
  r.eq("HTTP reset answers", reset, { ok: true, from: "http:reset" });
  r.ok("H4: HTTP reset clears the session cookie", !b.jar.has(SESSION_COOKIE), show([...b.jar.keys()]));
  r.eq("S2: the open socket sees the destroy", await r.ask(s, "session:get"), MISSING);

  const renewed = await r.touch(b);
  r.ok("a new session after the reset", renewed.sessionId !== created.sessionId, renewed.sessionId);
  r.eq("the new session starts over", renewed.session.httpCount, 1);
  const seenNew = await r.ask(s, "session:get");
  r.eq("S2: the open socket sees the NEW session id", seenNew.sessionId, renewed.sessionId);
}

async function withoutCookies(r) {
  const s = await r.socket({ cookie: "" });
  r.eq("S4: session:get without cookies", await r.ask(s, "session:get"), MISSING);
  r.eq("S4: session:inc without cookies", await r.ask(s, "session:inc"), MISSING);
  r.eq("S4: session:inc-slow without cookies", await r.ask(s, "session:inc-slow", 10), MISSING);
  r.eq("S4: session:reset without cookies", await r.ask(s, "session:reset"), MISSING);
  r.eq("S5: still no session for this socket", await r.ask(s, "session:get"), MISSING);

  const b = r.browser();
  const read = await r.json(b, "/api/read");
  r.ok("HTTP: a new browser has no session", read.sessionId == null, show(read));
  r.eq("HTTP: ... and empty session data", read.session ?? {}, {});
  const created = await r.touch(b);
  r.eq("HTTP still works independently: httpCount", created.session.httpCount, 1);
  r.eq("HTTP session untouched by the socket: wsCount", created.session.wsCount, undefined);
}

async function concurrentIncrements(r) {
  const PER_SOCKET = 100;
  const b = r.browser();
  const created = await r.touch(b);
  const s1 = await r.socket({ cookie: b.cookie() });
  const s2 = await r.socket({ cookie: b.cookie() });

  const pending = [];
  for (let i = 0; i < PER_SOCKET; i++) {
    pending.push(r.ask(s1, "session:inc"), r.ask(s2, "session:inc"));
  }
  const acks = await Promise.all(pending);
  const total = 2 * PER_SOCKET;
  r.ok(`all ${total} acks ok`, acks.every((a) => a.ok === true && a.sessionId === created.sessionId), show(acks.find((a) => a.ok !== true || a.sessionId !== created.sessionId)));
  const counts = acks.map((a) => a.session?.wsCount).sort((x, y) => x - y);
  const expected = Array.from({ length: total }, (_, i) => i + 1);
  const repeated = counts.filter((c, i) => i > 0 && c === counts[i - 1]);
  r.ok(
    `S3: the ${total} increments saw the distinct counts 1..${total}`,
    isDeepStrictEqual(counts, expected),
    `${new Set(counts).size} distinct counts, max ${counts.at(-1)}, repeated: ${show([...new Set(repeated)].slice(0, 20))}`,
  );
  const after = await r.ask(s1, "session:get");
  r.eq(`S3: wsCount is exactly +${total}`, after.session?.wsCount, total);
  const read = await r.json(b, "/api/read");
  r.eq("HTTP sees the same wsCount", read.session?.wsCount, total);
  r.eq("httpCount untouched", read.session?.httpCount, 1);
}

async function noLostUpdate(r) {
  const MIN_HTTP = 20;
  const MAX_HTTP = 1_000;
  const DELAY_MS = 600;
  // An HTTP commit that waits at least this long waited for the slow handler's lock: an
  // unblocked round trip on localhost takes a few ms, even on a loaded machine.
  const HELD_MS = DELAY_MS / 2;
  const b = r.browser();
  const before = await r.touch(b);
  const s = await r.socket({ cookie: b.cookie() });
  const w0 = (await r.ask(s, "session:get")).session?.wsCount ?? 0;
  const h0 = before.session.httpCount;

  // The socket handler takes the session's lock (S3) and holds it DELAY_MS; an HTTP commit
  // that writes takes the same lock (H4, H12). HTTP requests run back to back from the emit
  // on, so one of them must reach its commit while the handler holds the lock, and wait for
  // it: that request, answered after >= HELD_MS, is the evidence that the two overlapped.
  let ackedAt;
  const emittedAt = Date.now();
  const slow = r.ask(s, "session:inc-slow", DELAY_MS).finally(() => {
    ackedAt = Date.now();
  });
  slow.catch(() => {}); // awaited below; this only avoids an unhandled rejection meanwhile
  const answers = [];
  // Until MIN_HTTP requests ran and one was sent after the ack (so the ack arrived).
  while (answers.length < MIN_HTTP || answers.every((a) => a.sentBeforeAck)) {
    if (answers.length >= MAX_HTTP) throw new CheckFailed(`session:inc-slow not acked after ${MAX_HTTP} HTTP requests`);
    const sent = Date.now();
    const sentBeforeAck = ackedAt === undefined;
    const res = await r.touch(b);
    const n = answers.length + 1;
    if (res.session.httpCount !== h0 + n) {
      throw new CheckFailed(`HTTP request ${n}: httpCount ${res.session.httpCount}, expected ${h0 + n}`);
    }
    answers.push({ n, sentBeforeAck, ms: Date.now() - sent, wsCount: res.session.wsCount ?? 0 });
  }
  const slowAck = await slow;
  const slowMs = ackedAt - emittedAt;
  r.pass(`${answers.length} HTTP requests, each counted once in order (httpCount ${h0 + 1}..${h0 + answers.length})`);
  r.eq("session:inc-slow ok", slowAck.ok, true);
  r.ok(`session:inc-slow really held the session ${DELAY_MS} ms`, slowMs >= DELAY_MS, `acked after ${slowMs} ms`);

  // The handler loaded the session after the commits of requests 1..j and before the one of
  // request j + 1, which therefore had to wait for the handler's lock.
  const j = (slowAck.session?.httpCount ?? Number.NaN) - h0;
  r.ok(
    "S3: the socket handler saw a whole number of HTTP increments",
    Number.isInteger(j) && j >= 0 && j < answers.length,
    `its httpCount ${show(slowAck.session?.httpCount)}, HTTP counted ${h0}..${h0 + answers.length}`,
  );
  const next = answers[j];
  const duringSlow = answers.filter((a) => a.sentBeforeAck && a.ms >= HELD_MS).length;
  const timing = show(answers.slice(0, j + 3).map(({ n, ms, sentBeforeAck }) => ({ n, ms, sentBeforeAck })));
  r.ok(
    `S3/H12: the overlap happened: HTTP request ${next.n}, sent while the handler held the session, waited for it (duringSlow ${duringSlow})`,
    duringSlow > 0 && next.sentBeforeAck && next.ms >= HELD_MS,
    `no HTTP commit waited >= ${HELD_MS} ms for the handler; the requests: ${timing}`,
  );
  r.eq("session:inc-slow counted once", slowAck.session?.wsCount, w0 + 1);
  const afterAck = answers.filter((a) => !a.sentBeforeAck);
  r.ok(
    "HTTP requests sent after the ack see the socket's increment",
    afterAck.length > 0 && afterAck.every((a) => a.wsCount === w0 + 1),
    show(afterAck.map(({ n, wsCount }) => ({ n, wsCount }))),
  );

  const read = await r.json(b, "/api/read");
  r.eq("H4: every HTTP increment kept: httpCount", read.session?.httpCount, h0 + answers.length);
  r.eq("S3: the socket's increment kept, the held HTTP commit did not undo it: wsCount", read.session?.wsCount, w0 + 1);
  const got = await r.ask(s, "session:get");
  r.eq("the socket sees the same totals", [got.session?.httpCount, got.session?.wsCount], [h0 + answers.length, w0 + 1]);
}

async function socketReset(r) {
  const b = r.browser();
  const first = await r.touch(b);
  await r.touch(b);
  const s = await r.socket({ cookie: b.cookie() });
  r.eq("session:inc before the reset", (await r.ask(s, "session:inc")).session?.wsCount, 1);
  r.eq("S3: session:reset acks", await r.ask(s, "session:reset"), { ok: true });
  r.eq("the socket's session is gone", await r.ask(s, "session:get"), MISSING);

  const read = await r.json(b, "/api/read");
  r.ok("H2 d: HTTP ignores the dead session cookie", read.sessionId == null, show(read));
  r.eq("H2 d: ... and sees no data", read.session ?? {}, {});
  const next = await r.touch(b);
  r.ok("H4: the next /api/session starts a new session", next.sessionId !== first.sessionId, next.sessionId);
  r.eq("the new session starts at httpCount 1", next.session.httpCount, 1);
  r.eq("the new session has no wsCount", next.session.wsCount, undefined);
  const seen = await r.ask(s, "session:get");
  r.eq("S2: the open socket follows to the new session", seen.sessionId, next.sessionId);
}

async function foreignOrigin(r) {
  const b = r.browser();
  await r.touch(b);
  let refused;
  try {
    await r.connect({ cookie: b.cookie(), origin: FOREIGN_ORIGIN });
  } catch (err) {
    if (!err.connectError) throw err;
    refused = err.connectError;
  }
  r.ok(`S1: a handshake from ${FOREIGN_ORIGIN} is refused`, refused !== undefined, "it connected");
  r.eq("connect_error message", refused.message, "origin not allowed");
  const same = await r.socket({ cookie: b.cookie() });
  r.eq("the same browser from its own origin is accepted", (await r.ask(same, "session:get")).ok, true);
}

async function loginAndLogout(r) {
  const b = r.browser();
  const before = await r.touch(b);
  const oldClientCookie = b.jar.get(CLIENT_COOKIE);
  const oldSessionCookie = b.jar.get(SESSION_COOKIE);
  const s = await r.socket({ cookie: b.cookie() });
  r.eq("before the login the socket sees the session", (await r.ask(s, "session:get")).sessionId, before.sessionId);

  const regenerated = r.nextEvent(s, SESSION_ENDED, "session:ended on the pre-login socket after the login");
  const login = await b.get("/api/login?name=ada");
  r.eq("GET /api/login?name=ada answers 200", login.status, 200);
  r.eq("login: ok", login.body?.ok, true);
  r.eq("login sets user", login.body?.session?.user, "ada");
  r.eq("H5: login keeps the session's data: httpCount", login.body?.session?.httpCount, 1);
  r.ok(
    "H8: login moves the session to a new sessionId",
    typeof login.body?.sessionId === "string" && login.body.sessionId !== before.sessionId,
    show(login.body),
  );
  r.ok(
    "H8: login issues a new clientId",
    typeof login.body?.clientId === "string" && login.body.clientId !== before.clientId,
    show(login.body),
  );
  r.ok(
    "H8: login sends a new client cookie",
    login.setCookies.includes(CLIENT_COOKIE) && b.jar.get(CLIENT_COOKIE) !== oldClientCookie,
    show(login.setCookies),
  );
  r.ok(
    "login sends a new session cookie",
    login.setCookies.includes(SESSION_COOKIE) && b.jar.get(SESSION_COOKIE) !== oldSessionCookie,
    show(login.setCookies),
  );
  r.eq("S6: the socket connected before the login hears session:ended regenerated", await regenerated, {
    reason: "regenerated",
  });
  r.eq("S6/H8: the pre-login socket no longer sees the session", await r.ask(s, "session:get"), MISSING);
  r.eq("S6/H8: ... nor writes to it", await r.ask(s, "session:inc"), MISSING);

  await r.reconnect(s, b.cookie());
  const after = await r.ask(s, "session:get");
  r.eq("S6: reconnected with the new cookies, the socket is bound to the new session", after.sessionId, login.body.sessionId);
  r.eq("S6: ... and sees user", after.session?.user, "ada");
  r.eq("the reconnected socket writes to the new session", (await r.ask(s, "session:inc")).session?.wsCount, 1);
  const read = await r.json(b, "/api/read");
  r.eq("HTTP sees the same session after the login", read.sessionId, login.body.sessionId);
  r.eq("HTTP sees user and the socket's write", [read.session?.user, read.session?.wsCount], ["ada", 1]);

  const cidOnly = await r.socket({ cookie: `${CLIENT_COOKIE}=${b.jar.get(CLIENT_COOKIE)}` });
  r.eq("S1: a socket with only the client cookie does not see the session", await r.ask(cidOnly, "session:get"), MISSING);
  const touched = await r.touch(b);
  r.eq("HTTP writes to the session meanwhile", touched.session.httpCount, 2);
  r.eq("S1: ... not even after that HTTP write", await r.ask(cidOnly, "session:get"), MISSING);
  r.eq("S1: ... and it cannot write to it", await r.ask(cidOnly, "session:inc"), MISSING);
  const still = await r.json(b, "/api/read");
  r.eq("S1: the session kept only the bound socket's write", still.session?.wsCount, 1);

  const destroyed = r.nextEvent(s, SESSION_ENDED, "session:ended after the logout");
  const logout = await b.get("/api/logout");
  r.eq("GET /api/logout answers", [logout.status, logout.body], [200, { ok: true, from: "http:logout" }]);
  r.ok("H4: logout clears the session cookie", !b.jar.has(SESSION_COOKIE), show([...b.jar.keys()]));
  r.eq("S6: the socket hears session:ended destroyed", await destroyed, { reason: "destroyed" });
  r.eq("S6: session:get after the logout: missing-session", await r.ask(s, "session:get"), MISSING);
  const gone = await r.json(b, "/api/read");
  r.eq("HTTP after the logout: no session", [gone.sessionId ?? null, gone.session ?? {}], [null, {}]);
  r.eq("H8: logout keeps the client id", gone.clientId, login.body.clientId);
}

async function plantedClientCookie(r) {
  const attacker = r.browser();
  const own = await r.json(attacker, "/api/read");
  const planted = attacker.jar.get(CLIENT_COOKIE);
  r.ok("the attacker holds a client cookie", typeof planted === "string" && planted.length > 0, show([...attacker.jar.keys()]));
  const spy = await r.socket({ cookie: `${CLIENT_COOKIE}=${planted}` });
  r.eq("the attacker's socket has no session yet", await r.ask(spy, "session:get"), MISSING);

  const victim = r.browser();
  victim.jar.set(CLIENT_COOKIE, planted);
  const login = await victim.get("/api/login?name=victim");
  r.eq("the victim logs in with the planted client cookie", [login.status, login.body?.session?.user], [200, "victim"]);
  r.ok("H8: the login's clientId is not the planted one", login.body?.clientId !== own.clientId, show(login.body));
  r.ok("H8: the login replaces the planted client cookie", victim.jar.get(CLIENT_COOKIE) !== planted);
  r.eq("H8: the attacker's socket does not see the victim's session", await r.ask(spy, "session:get"), MISSING);
  r.eq("H8: ... nor writes to it", await r.ask(spy, "session:inc"), MISSING);
  const theirs = await r.json(attacker, "/api/read");
  r.eq("H2: the attacker's browser has no session", [theirs.sessionId ?? null, theirs.session ?? {}], [null, {}]);
  const mine = await r.json(victim, "/api/read");
  r.eq("the victim's session is intact", [mine.sessionId, mine.session?.user, mine.session?.wsCount], [
    login.body.sessionId,
    "victim",
    undefined,
  ]);
}

async function badLoginNames(r) {
  const b = r.browser();
  const before = await r.touch(b);
  const bad = [
    ["empty", "?name="],
    ["no name", ""],
    ["33 characters", `?name=${"a".repeat(33)}`],
    ["a space", "?name=a%20b"],
    ["markup", "?name=%3Cb%3E"],
    ["a dot", "?name=a.b"],
  ];
  for (const [label, query] of bad) {
    const res = await b.get(`/api/login${query}`);
    r.eq(`a bad name (${label}) gets 400 bad-name`, [res.status, res.body], [400, BAD_NAME]);
  }
  const read = await r.json(b, "/api/read");
  r.eq("bad names change nothing: same session, same client, no user", [read.sessionId, read.clientId, read.session?.user], [
    before.sessionId,
    before.clientId,
    undefined,
  ]);
  const name = `${"Az09_-".repeat(5)}xy`;
  const ok = await b.get(`/api/login?name=${name}`);
  r.eq("a 32-character name is accepted", [name.length, ok.status, ok.body?.session?.user], [32, 200, name]);
}

async function capturedThroughMapping(r) {
  const victim = r.browser();
  const login = await victim.get("/api/login?name=victim");
  r.eq("the victim logs in", [login.status, login.body?.ok, login.body?.session?.user], [200, true, "victim"]);
  const vsid = login.body.sessionId;
  const vcid = victim.jar.get(CLIENT_COOKIE);
  const s = await r.socket({ cookie: victim.cookie() });
  const before = await r.ask(s, "session:get");
  r.eq("the victim's socket is bound to the victim's session", [before.ok, before.sessionId, before.session?.user], [true, vsid, "victim"]);

  // The attacker holds the victim's client cookie only (app.sid.cid, no app.sid).
  const attacker = r.browser();
  attacker.jar.set(CLIENT_COOKIE, vcid);
  const written = await attacker.get("/api/session");
  r.eq(
    "the attacker's /api/session with only the victim's client cookie answers: [status, ok, httpCount]",
    [written.status, written.body?.ok, written.body?.session?.httpCount],
    [200, true, 1],
  );

  // The victim's side first: what the capture would change.
  const after = await r.ask(s, "session:get");
  r.eq(
    "H2/S2: after the attacker's write the victim's socket still reads the victim's session: [ok, sessionId, user]",
    [after.ok, after.sessionId, after.session?.user],
    [true, vsid, "victim"],
  );
  const inc = await r.ask(s, "session:inc");
  r.eq(
    "S2: the victim's socket's session:inc writes the victim's session: [ok, sessionId, user, wsCount]",
    [inc.ok, inc.sessionId, inc.session?.user, inc.session?.wsCount],
    [true, vsid, "victim", 1],
  );
  const read = await r.json(victim, "/api/read");
  r.eq(
    "H2: the victim's HTTP /api/read is unchanged, with its socket's write: [sessionId, clientId, user, httpCount, wsCount]",
    [read.sessionId, read.clientId, read.session?.user, read.session?.httpCount, read.session?.wsCount],
    [vsid, login.body.clientId, "victim", undefined, 1],
  );

  // The attacker's side: a client and a session of its own.
  r.ok(
    `H2/H8: the attacker's request got a NEW client id (a Set-Cookie ${CLIENT_COOKIE} with another value)`,
    written.setCookies.includes(CLIENT_COOKIE) &&
      attacker.jar.get(CLIENT_COOKIE) !== vcid &&
      typeof written.body?.clientId === "string" &&
      written.body.clientId !== login.body.clientId,
    show({ setCookies: written.setCookies, clientId: written.body?.clientId, victimClientId: login.body.clientId }),
  );
  r.ok("H2: ... and a new session of its own", typeof written.body?.sessionId === "string" && written.body.sessionId !== vsid, show(written.body));
  const theirs = await r.json(attacker, "/api/read");
  r.eq(
    "H2/S1: the attacker's HTTP /api/read shows its own session, never the victim's data: [sessionId, clientId, user, httpCount, wsCount]",
    [theirs.sessionId, theirs.clientId, theirs.session?.user, theirs.session?.httpCount, theirs.session?.wsCount],
    [written.body.sessionId, written.body.clientId, undefined, 1, undefined],
  );
}

async function tiedPairs(r) {
  const attacker = r.browser();
  const mallory = await attacker.get("/api/login?name=mallory");
  r.eq("the attacker logs in (its own pair)", [mallory.status, mallory.body?.session?.user], [200, "mallory"]);
  const victim = r.browser();
  const login = await victim.get("/api/login?name=victim");
  r.eq("the victim logs in", [login.status, login.body?.session?.user], [200, "victim"]);
  const asid = mallory.body.sessionId;
  const vsid = login.body.sessionId;
  const complete = (b) => b.jar.has(CLIENT_COOKIE) && b.jar.has(SESSION_COOKIE);
  r.ok(
    "the attacker and the victim each hold a complete pair (client and session cookie)",
    complete(attacker) && complete(victim),
    show([[...attacker.jar.keys()], [...victim.jar.keys()]]),
  );
  const pair = (b) => `${CLIENT_COOKIE}=${b.jar.get(CLIENT_COOKIE)}; ${SESSION_COOKIE}=${b.jar.get(SESSION_COOKIE)}`;
  // What the victim's browser sends once a sibling subdomain planted the attacker's pair with
  // a longer Path: the attacker's pair first, then the victim's own.
  const header = `${pair(attacker)}; ${pair(victim)}`;
  const tied = new HandBuiltCookies(r.base, header);

  const read = await r.json(tied, "/api/read");
  r.eq(
    "C4: HTTP /api/read with both pairs reads no session (never the attacker's): [sessionId, user, session]",
    [read.sessionId ?? null, read.session?.user, read.session ?? {}],
    [null, undefined, {}],
  );
  const s = await r.socket({ cookie: header });
  r.eq("C4: a socket opened with both pairs: session:get answers missing-session, never the attacker's session", await r.ask(s, "session:get"), MISSING);
  r.eq("C4: ... and its session:inc writes nothing", await r.ask(s, "session:inc"), MISSING);
  const write = await r.json(tied, "/api/session");
  r.ok(
    "C4: HTTP /api/session with both pairs writes a new session, neither the attacker's nor the victim's",
    write.ok === true &&
      typeof write.sessionId === "string" &&
      write.sessionId !== asid &&
      write.sessionId !== vsid &&
      write.session?.user === undefined &&
      write.session?.httpCount === 1,
    show(write),
  );
  r.eq("C4: ... and the socket still gets missing-session", await r.ask(s, "session:get"), MISSING);

  const theirs = await r.json(attacker, "/api/read");
  r.eq(
    "C4: the attacker's session is untouched: [sessionId, user, httpCount, wsCount]",
    [theirs.sessionId, theirs.session?.user, theirs.session?.httpCount, theirs.session?.wsCount],
    [asid, "mallory", undefined, undefined],
  );
  const mine = await r.json(victim, "/api/read");
  r.eq(
    "C4: the victim's session is untouched too (neither pair was trusted): [sessionId, user, httpCount, wsCount]",
    [mine.sessionId, mine.session?.user, mine.session?.httpCount, mine.session?.wsCount],
    [vsid, "victim", undefined, undefined],
  );
  const own = await r.socket({ cookie: victim.cookie() });
  const got = await r.ask(own, "session:get");
  r.eq("the victim's own pair alone still binds a socket to the victim's session", [got.ok, got.sessionId, got.session?.user], [true, vsid, "victim"]);
}

const SCENARIOS = [
  ["socket and HTTP see each other's writes (S1 S2 S3 H2 H4 H7)", sharedBothWays],
  ["socket connected before the session existed (S1 S2 S5 H1 H4)", connectedBeforeSession],
  ["socket without cookies (S4 S5)", withoutCookies],
  ["2 sockets x 100 concurrent session:inc (S3)", concurrentIncrements],
  ["no lost update between HTTP and session:inc-slow (S3 H4)", noLostUpdate],
  ["session:reset over the socket (S2 S3 H2 H4)", socketReset],
  ["foreign Origin refused (S1)", foreignOrigin],
  ["login and logout reach the sockets (H8 S1 S2 S6 H4)", loginAndLogout],
  ["a client cookie planted before the login does not follow the session (H8 S1 H2)", plantedClientCookie],
  ["bad login names (400 bad-name)", badLoginNames],
  ["the victim's client cookie alone never moves the victim's socket into the attacker's session (H2 H8 S1 S2)", capturedThroughMapping],
  ["two tied pairs (the attacker's planted first) trust neither (C4)", tiedPairs],
];

// -- main -------------------------------------------------------------------------------

async function main() {
  const base = baseUrl(process.argv[2], "node quick_start_scenario.mjs <baseUrl>");
  boundRun(RUN_TIMEOUT_MS);

  const started = Date.now();
  let checks = 0;
  const failed = [];
  for (const transport of TRANSPORTS) {
    for (const [title, scenario] of SCENARIOS) {
      console.log(`---- [${transport.name}] ${title}`);
      const run = new Run(base, transport);
      const t0 = Date.now();
      try {
        await scenario(run);
      } catch (err) {
        run.close();
        const line = `[${transport.name}] ${title}: ${reason(err)}`;
        if (!KEEP_GOING) fail(line);
        console.log(`FAIL ${line}`);
        failed.push(`[${transport.name}] ${title}`);
        continue;
      }
      run.close();
      checks += run.checks;
      console.log(`     (${Date.now() - t0} ms)`);
    }
  }
  if (failed.length) {
    console.log(`FAILED ${failed.length} of ${SCENARIOS.length * TRANSPORTS.length} scenario runs; ${checks} checks of the others passed`);
    process.exit(1);
  }
  console.log(`PASS ${checks} checks, ${SCENARIOS.length} scenarios x ${TRANSPORTS.length} transports in ${Date.now() - started} ms`);
  process.exit(0);
}

await main();
