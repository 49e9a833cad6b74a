// Two quick-start nodes behind one Redis, tested from outside as one browser sees them: one
// cookie jar shared by the browser's HTTP requests and its socket.io connections, HTTP to one
// node and the socket to the other.
//
//   node two_nodes.mjs BASE_A BASE_B             the scenarios a-i below
//   node two_nodes.mjs BASE_A BASE_B --outage    the Redis outage run (M4), driven over stdin
//
// It speaks the Quick Start protocol of quick_start_scenario.mjs (whose helpers it shares,
// lib.mjs): `GET /api/session` (httpCount += 1), `/api/read`, `/plain`, `/api/user?name=N`,
// `/api/login?name=N` (regenerates: new session id AND new client id), `/api/logout`; socket.io
// events with acks `session:get`, `session:inc` (wsCount += 1), `session:inc-slow (ms)`; the
// pushes `session:ended` `{ reason }` and `session:changed` `{ isNew }` to a browser's sockets.
// Sockets use the websocket transport, send the browser's cookies in the handshake and the
// `Origin` of the node they connect to.
//
// Scenarios (rule ids of docs/RULES.md):
// a. M1: HTTP login on A; a socket opened on B with the browser's cookies is bound to that
//    session (same sessionId) and sees `user: ada`; HTTP on B reads the same session;
// b. M1 M3 live: with B's socket bound, HTTP writes on A (`/api/user`, `/api/session`) are
//    seen by B's socket at once (session:get) and a `session:changed` push reaches it;
// c. M2: HTTP writes on B and `session:inc` on A, interleaved and overlapping (also with a
//    `session:inc-slow` on A holding the session while HTTP on B runs back to back), lose no
//    update: the final httpCount and wsCount are exact, read on both nodes; and an HTTP write
//    on B sent while A's handler held the session waited for it (exclusion across nodes);
// d. M2: 2 x 100 concurrent `session:inc` of one session split across a socket on A and one on
//    B end at exactly wsCount + 200, and the 200 acks saw 200 distinct counts;
// e. M3 S6: `/api/logout` on A: B's socket hears `session:ended` `destroyed` and its next
//    session:get answers missing-session;
// f. M1 M3 S6 H8: `/api/login` (regenerate) on A: B's socket hears `session:ended`
//    `regenerated`, no longer sees the old session; reconnected on B with the browser's new
//    cookies it is bound to the new session and sees the user;
// g. H2 S1: the victim's session cookie (app.sid + app.sid.sig) copied into an attacker's jar
//    next to the attacker's own client cookie is ignored on both nodes, over HTTP and over
//    sockets; the victim's session is untouched;
// h. H2 H8 S1 S2: capture through the mapping: a request on one node carrying only the
//    victim's client cookie (no session cookie) that writes the session (`/api/user?name=
//    planted`) gets a NEW client id (a Set-Cookie) and a session of its own: creation never
//    moves a held client (H2), so the victim's socket open on the other node still reads and
//    writes the victim's session (S2), the victim's HTTP reads are unchanged and the
//    attacker's never show the victim's data (S1); the victim on A and the attacker on B, then
//    the reverse;
// i. C4: two tied pairs trust neither: the attacker's own complete, logged-in pair planted by a
//    sibling subdomain so that it is sent first (`app.sid.cid=<attacker>; app.sid=<attacker>;
//    app.sid.cid=<victim>; app.sid=<victim>`): HTTP on A reads no session, a socket on B gets
//    missing-session, an HTTP write starts a new session; the attacker's session is never
//    read or written (no login CSRF), the victim's own is untouched.
//
// The outage run (M4), for a driver that can stop and restart Redis (tests/multi_node_e2e.rs):
// before: a, and a session held open with a socket on each node; then Redis dies under load: a
// browser logged in on A, LOAD_SOCKETS sockets on each node in closed loops of `session:inc`
// and closed loops of HTTP `/api/session` on both nodes, all on its one session; once it runs,
// it prints `WAIT down` (the load still running) and waits for the line `down` on stdin (the
// driver stopped Redis), runs the load LOAD_AFTER_KILL_MS more (and until each of its loops
// had an answer to a request sent after `down`) and stops it; every answer of
// the load came within LOAD_ANSWER_MS and is a success or a clean error (an empty 500; `ok:
// false` with an error string, never missing-session), every one answered before `WAIT down`
// a success and every one sent after `down` an error, the increments and HTTP writes answered
// ok are all distinct (none lost or counted twice) and are successive states of the one
// session (none half-written), and the load's sockets stay connected; during:
// HTTP on both nodes answers 500 with an empty body within OUTAGE_ANSWER_MS, and socket events
// on both nodes answer an error outcome (`ok: false`, not missing-session) as fast; then it
// prints `WAIT up` and waits for `up` (Redis restarted, empty); after: both nodes serve again
// within RECOVERY_MS, the held sockets still get answers, and a (a new login), d (2 x 50) and
// e (a logout reaching the other node: the cross-node notices came back by themselves) pass
// again. Sessions stored before the outage are lost (Redis kept nothing): expected.
//
// One line per check; at the first failure `FAIL <scenario>: <what was expected, what came
// back>` and exit 1 (with KEEP_GOING=1: every scenario runs, each failure printed, exit 1 at the
// end). Every await is bounded, the whole run too (RUN_TIMEOUT_MS); the last line of a
// successful run is `PASS <n> checks`.

import { createInterface } from "node:readline";
import {
  Browser,
  CLIENT_COOKIE,
  CheckFailed,
  Checker,
  HandBuiltCookies,
  MISSING,
  SESSION_CHANGED,
  SESSION_COOKIE,
  SESSION_ENDED,
  WEBSOCKET,
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
  sleep,
  touch,
  within,
} from "./lib.mjs";

const RUN_TIMEOUT_MS = 60_000;
/** How long a push (`session:changed`, `session:ended`) may take to reach the other node. */
const PUSH_TIMEOUT_MS = 3_000;
/** A pause for the pushes of earlier writes to arrive before waiting for the next one. */
const QUIET_MS = 300;
/** How long the driver may take to stop or restart Redis. */
const SIGNAL_TIMEOUT_MS = 20_000;
/** During the outage, an HTTP answer or a socket ack within this. */
const OUTAGE_ANSWER_MS = 2_000;
/** After Redis is back, both nodes serve again within this. */
const RECOVERY_MS = 10_000;
/** The load Redis dies under: every request and ack answered within this, also meanwhile. */
const LOAD_ANSWER_MS = 3_000;
/** The load: this many sockets per node, each a closed loop of `session:inc`. */
const LOAD_SOCKETS = 3;
/** Before asking for the kill, the load runs this long and has this many ok answers per node. */
const LOAD_WARMUP_MS = 500;
const LOAD_MIN_INCS = 10;
const LOAD_MIN_HTTP = 3;
const LOAD_WARMUP_LIMIT_MS = 5_000;
/**
 * After the driver says `down`, the load keeps running this long, and until each of its loops
 * had an answer to a request sent after `down` (a request in flight at the kill may take up to
 * LOAD_ANSWER_MS), but no longer than LOAD_AFTER_KILL_LIMIT_MS.
 */
const LOAD_AFTER_KILL_MS = 1_000;
const LOAD_AFTER_KILL_LIMIT_MS = 2 * LOAD_ANSWER_MS + 1_000;
/** A pause after an error answer, so a loop that fails fast does not spin. */
const LOAD_ERROR_PAUSE_MS = 10;
const SIGNATURE = ".sig";
const USAGE = "node two_nodes.mjs <baseUrlA> <baseUrlB> [--outage]";
const KEEP_GOING = process.env.KEEP_GOING === "1";

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Sockets held across the phases of the outage run; closed at the end. */
const held = [];

/** One scenario against both nodes: prints its checks, owns its sockets. */
class Pair extends Checker {
  constructor(tag, A, B) {
    super(tag);
    this.A = A;
    this.B = B;
    this.sockets = [];
  }

  browser() {
    return new Browser(this.A.base);
  }

  get(b, node, path) {
    return b.get(path, node.base);
  }

  json(b, node, path) {
    return json(b, path, node.base);
  }

  touch(b, node) {
    return touch(b, node.base);
  }

  /** A websocket on `node` with `cookie` and `node`'s Origin; `hold` keeps it to the end. */
  async socket(node, cookie, { hold = false } = {}) {
    const s = openSocket(node.base, WEBSOCKET, { cookie });
    (hold ? held : this.sockets).push(s);
    await ready(s, WEBSOCKET).catch((err) => {
      throw new CheckFailed(`a socket on ${node.name}: ${reason(err)}`);
    });
    this.eq(`a websocket on ${node.name} connects`, s.io.engine.transport.name, "websocket");
    return s;
  }

  /** `session:get` on `s` answers ok with `sessionId` (and `user` when given). */
  async bound(s, node, sessionId, label, user) {
    const got = await ask(s, "session:get");
    if (user === undefined) {
      this.eq(label ?? `the socket on ${node.name} is bound to the session`, [got.ok, got.sessionId], [true, sessionId]);
    } else {
      this.eq(label, [got.ok, got.sessionId, got.session?.user], [true, sessionId, user]);
    }
    return got;
  }

  /** `GET /api/login?name=<name>` on `node` answers 200, ok, with the user; its body. */
  async login(b, node, name) {
    const res = await this.get(b, node, `/api/login?name=${name}`);
    this.eq(`HTTP /api/login?name=${name} on ${node.name}`, [res.status, res.body?.ok, res.body?.session?.user], [200, true, name]);
    return res.body;
  }

  /** A new browser with a session (`/api/session` on `httpNode`), a socket on `socketNode` bound to it. */
  async browserWithSocket(httpNode, socketNode) {
    const b = this.browser();
    const first = await this.touch(b, httpNode);
    const s = await this.socket(socketNode, b.cookie());
    await this.bound(s, socketNode, first.sessionId);
    return { b, first, sid: first.sessionId, s };
  }

  /**
   * The push `pending` (from `nextEvent`) arrived with `expected`; when it did not arrive,
   * the failure also says what `session:get` on `s` answers meanwhile.
   */
  async heard(label, pending, expected, s) {
    let got;
    try {
      got = await pending;
    } catch (err) {
      const now = await ask(s, "session:get").catch((e) => ({ noAck: reason(e) }));
      throw new CheckFailed(`${label}: ${reason(err)}; meanwhile session:get on that socket answers ${show(now)}`);
    }
    this.eq(label, got, expected);
  }

  close() {
    for (const s of this.sockets) s.disconnect();
    this.sockets = [];
  }
}

// -- scenarios --------------------------------------------------------------------------

/** a. M1: a login over HTTP on A is the session of a socket opened on B. */
async function loginSeenAcross(r) {
  const { A, B } = r;
  const b = r.browser();
  const login = await r.login(b, A, "ada");
  const sid = login.sessionId;
  r.ok(
    "the browser holds the session and client cookies",
    b.jar.has(SESSION_COOKIE) && b.jar.has(CLIENT_COOKIE),
    show([...b.jar.keys()]),
  );
  const s = await r.socket(B, b.cookie());
  await r.bound(s, B, sid, "M1: a socket on B is bound to the session made on A and sees user ada", "ada");
  const read = await r.json(b, B, "/api/read");
  r.eq("HTTP /api/read on B reads the same session and client", [read.sessionId, read.clientId, read.session?.user], [
    sid,
    login.clientId,
    "ada",
  ]);
  const inc = await ask(s, "session:inc");
  r.eq("session:inc on B writes to it", [inc.ok, inc.sessionId, inc.session?.wsCount], [true, sid, 1]);
  const back = await r.json(b, A, "/api/read");
  r.eq("HTTP /api/read on A sees B's socket write", [back.sessionId, back.session?.wsCount, back.session?.user], [sid, 1, "ada"]);
}

/** b. M1 M3: with B's socket bound, HTTP writes on A reach it, read and pushed. */
async function liveAcross(r) {
  const { A, B } = r;
  const { b, sid, s } = await r.browserWithSocket(A, B);
  for (const [path, httpCount] of [
    ["/api/user?name=bob", 1],
    ["/api/session", 2],
  ]) {
    await sleep(QUIET_MS); // the pushes of earlier writes have come and gone
    const changed = nextEvent(s, SESSION_CHANGED, `session:changed at B's socket after ${path} on A`, PUSH_TIMEOUT_MS);
    const t0 = Date.now();
    const res = await r.json(b, A, path);
    const expected = [sid, "bob", httpCount];
    r.eq(`HTTP ${path} on A: [sessionId, user, httpCount]`, [res.sessionId, res.session?.user, res.session?.httpCount], expected);
    const seen = await ask(s, "session:get");
    r.eq("M1: B's socket sees A's write at once (session:get)", [seen.sessionId, seen.session?.user, seen.session?.httpCount], expected);
    await r.heard(`M3: a session:changed push reaches B's socket within ${PUSH_TIMEOUT_MS} ms`, changed, { isNew: false }, s);
    console.log(`     (pushed ${Date.now() - t0} ms after ${path} was sent)`);
  }
}

/** c. M2: HTTP on B and session:inc on A interleaved and overlapping lose no update. */
async function interleavedAcross(r) {
  const ROUNDS = 20;
  const SLOW_MS = 500;
  const MIN_HTTP = 10;
  const MAX_HTTP = 500;
  const { A, B } = r;
  const { b, sid, s } = await r.browserWithSocket(B, A);

  // Each round: one HTTP write on B and one socket write on A at the same time.
  const http = [];
  const ws = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [h, w] = await Promise.all([r.touch(b, B), ask(s, "session:inc")]);
    http.push(h.sessionId === sid ? h.session.httpCount : show(h));
    ws.push(w.ok === true && w.sessionId === sid ? w.session?.wsCount : show(w));
  }
  r.eq(`${ROUNDS} HTTP /api/session on B, each counted once, in order`, http, range(2, ROUNDS + 1));
  r.eq(`${ROUNDS} session:inc on A at the same time, each counted once, in order`, ws, range(1, ROUNDS));

  // session:inc-slow on A holds the session SLOW_MS; HTTP on B runs back to back meanwhile.
  const h0 = ROUNDS + 1;
  let ackedAt;
  const slow = ask(s, "session:inc-slow", SLOW_MS).finally(() => {
    ackedAt = Date.now();
  });
  slow.catch(() => {}); // awaited below; this only avoids an unhandled rejection meanwhile
  const answers = [];
  while (answers.length < MIN_HTTP || answers.every((a) => a.sentBeforeAck)) {
    if (answers.length >= MAX_HTTP) throw new CheckFailed(`session:inc-slow on A not acked after ${MAX_HTTP} HTTP requests on B`);
    const sent = Date.now();
    const sentBeforeAck = ackedAt === undefined;
    const res = await r.touch(b, B);
    const n = answers.length + 1;
    if (res.sessionId !== sid || res.session.httpCount !== h0 + n) {
      throw new CheckFailed(
        `HTTP request ${n} on B during session:inc-slow on A: expected ${show([sid, h0 + n])}, got ${show([res.sessionId, res.session.httpCount])}`,
      );
    }
    answers.push({ n, sentBeforeAck, ms: Date.now() - sent });
  }
  const n = answers.length;
  const slowAck = await slow;
  r.pass(`${n} HTTP requests on B during and after session:inc-slow on A, each counted once in order`);
  r.eq("session:inc-slow on A counted once", [slowAck.ok, slowAck.sessionId, slowAck.session?.wsCount], [true, sid, ROUNDS + 1]);

  const totals = [h0 + n, ROUNDS + 1];
  for (const node of [A, B]) {
    const read = await r.json(b, node, "/api/read");
    r.eq(`M2: no update lost, read on ${node.name}: [httpCount, wsCount]`, [read.session?.httpCount, read.session?.wsCount], totals);
  }
  const got = await ask(s, "session:get");
  r.eq("M2: ... and on A's socket", [got.session?.httpCount, got.session?.wsCount], totals);

  // Exclusion, not only no lost update: while A's handler held the session, an HTTP write on B
  // waited for it (an unblocked round trip on localhost takes a few ms).
  const held = SLOW_MS / 2;
  const waited = answers.filter((a) => a.sentBeforeAck && a.ms >= held);
  r.ok(
    `M2: exclusion across nodes: an HTTP write on B sent while A's session:inc-slow held the session waited >= ${held} ms for it`,
    waited.length > 0,
    `none did: ${answers.filter((a) => a.sentBeforeAck).length} were sent before the ack, the slowest took ${Math.max(...answers.map((a) => a.ms))} ms`,
  );
}

/** d. M2: 2 x `perSocket` concurrent session:inc split across a socket on A and one on B. */
async function concurrentAcross(r, perSocket) {
  const { A, B } = r;
  const total = 2 * perSocket;
  const b = r.browser();
  const created = await r.touch(b, A);
  const sid = created.sessionId;
  const onA = await r.socket(A, b.cookie());
  const onB = await r.socket(B, b.cookie());
  await r.bound(onA, A, sid);
  await r.bound(onB, B, sid);

  const pending = [];
  for (let i = 0; i < perSocket; i++) pending.push(ask(onA, "session:inc"), ask(onB, "session:inc"));
  const acks = await Promise.all(pending);
  const bad = acks.find((a) => a.ok !== true || a.sessionId !== sid);
  r.ok(`all ${total} acks ok, on the session`, acks.length === total && bad === undefined, show([acks.length, bad]));
  const counts = acks.map((a) => a.session?.wsCount).sort((x, y) => x - y);
  const repeated = [...new Set(counts.filter((c, i) => i > 0 && c === counts[i - 1]))];
  r.ok(
    `M2: the ${total} increments on A and B saw the distinct counts 1..${total}`,
    counts.every((c, i) => c === i + 1),
    `${new Set(counts).size} distinct counts, max ${counts.at(-1)}, repeated: ${show(repeated.slice(0, 20))}`,
  );
  for (const [node, s] of [
    [A, onA],
    [B, onB],
  ]) {
    const got = await ask(s, "session:get");
    r.eq(`M2: wsCount is exactly +${total} on ${node.name}'s socket`, got.session?.wsCount, total);
  }
  const read = await r.json(b, B, "/api/read");
  r.eq("HTTP on B sees the same totals: [httpCount, wsCount]", [read.session?.httpCount, read.session?.wsCount], [1, total]);
}

/** e. M3 S6: a logout on A ends the session of B's socket. */
async function logoutAcross(r) {
  const { A, B } = r;
  const b = r.browser();
  const login = await r.login(b, A, "eve");
  const sid = login.sessionId;
  const s = await r.socket(B, b.cookie());
  await r.bound(s, B, sid, "B's socket is bound to the session and sees user eve", "eve");

  const ended = nextEvent(s, SESSION_ENDED, "session:ended at B's socket after /api/logout on A", PUSH_TIMEOUT_MS);
  const t0 = Date.now();
  const out = await r.get(b, A, "/api/logout");
  r.eq("HTTP /api/logout on A", [out.status, out.body], [200, { ok: true, from: "http:logout" }]);
  r.ok("the logout clears the session cookie", !b.jar.has(SESSION_COOKIE), show([...b.jar.keys()]));
  await r.heard(`M3/S6: B's socket hears session:ended destroyed within ${PUSH_TIMEOUT_MS} ms`, ended, { reason: "destroyed" }, s);
  console.log(`     (pushed ${Date.now() - t0} ms after the logout was sent)`);
  r.eq("M1/S6: B's socket's next session:get: missing-session", await ask(s, "session:get"), MISSING);
  r.eq("M1/S6: ... nor can it write", await ask(s, "session:inc"), MISSING);
  const read = await r.json(b, B, "/api/read");
  r.eq("HTTP on B after the logout: no session, same client", [read.sessionId ?? null, read.session ?? {}, read.clientId], [
    null,
    {},
    login.clientId,
  ]);
}

/** f. M1 M3 S6 H8: a login on A regenerates; B's socket hears it and rebinds. */
async function regenerateAcross(r) {
  const { A, B } = r;
  const { b, first, s } = await r.browserWithSocket(A, B);

  const ended = nextEvent(s, SESSION_ENDED, "session:ended at B's socket after /api/login on A", PUSH_TIMEOUT_MS);
  const t0 = Date.now();
  const login = await r.login(b, A, "grace");
  const sid = login.sessionId;
  r.ok("H8: a new sessionId", typeof sid === "string" && sid !== first.sessionId, show(login));
  r.ok("H8: a new clientId", login.clientId !== first.clientId, show(login));
  await r.heard(`M3/S6: B's socket hears session:ended regenerated within ${PUSH_TIMEOUT_MS} ms`, ended, { reason: "regenerated" }, s);
  console.log(`     (pushed ${Date.now() - t0} ms after the login was sent)`);
  r.eq("S6/H8: B's socket no longer sees the old session", await ask(s, "session:get"), MISSING);

  await reconnect(s, b.cookie(), WEBSOCKET).catch((err) => {
    throw new CheckFailed(`reconnecting B's socket with the new cookies: ${reason(err)}`);
  });
  r.eq("the socket reconnects on B (a new handshake)", s.io.engine.transport.name, "websocket");
  await r.bound(s, B, sid, "M1/S6: reconnected with the new cookies, B's socket is bound to the new session and sees grace", "grace");
  const inc = await ask(s, "session:inc");
  r.eq("B's socket writes to the new session", [inc.ok, inc.sessionId, inc.session?.wsCount], [true, sid, 1]);
  const read = await r.json(b, A, "/api/read");
  r.eq("HTTP on A sees it: [sessionId, user, wsCount]", [read.sessionId, read.session?.user, read.session?.wsCount], [sid, "grace", 1]);
}

/** g. H2 S1: the victim's session cookie in an attacker's jar is ignored on both nodes. */
async function copiedCookieAcross(r) {
  const { A, B } = r;
  const victim = r.browser();
  const login = await r.login(victim, A, "victim");
  const vsid = login.sessionId;
  const stolen = [SESSION_COOKIE, `${SESSION_COOKIE}${SIGNATURE}`].filter((name) => victim.jar.has(name));
  r.ok("the victim holds a session cookie to copy", stolen.includes(SESSION_COOKIE), show([...victim.jar.keys()]));

  const attacker = r.browser();
  const plain = await r.get(attacker, B, "/plain");
  r.ok(
    "the attacker has a client cookie of its own (from /plain on B) and no session",
    plain.status === 200 && attacker.jar.has(CLIENT_COOKIE) && !attacker.jar.has(SESSION_COOKIE),
    show([plain.status, [...attacker.jar.keys()]]),
  );
  const plant = () => {
    for (const name of stolen) attacker.jar.set(name, victim.jar.get(name));
  };

  for (const node of [A, B]) {
    plant();
    const read = await r.json(attacker, node, "/api/read");
    r.eq(
      `H2: HTTP /api/read on ${node.name} ignores the copied cookie: [sessionId, session]`,
      [read.sessionId ?? null, read.session ?? {}],
      [null, {}],
    );
    r.ok(`H2: ... and answers the attacker's client, not the victim's`, read.clientId !== login.clientId, show(read));
  }
  for (const node of [A, B]) {
    plant();
    const spy = await r.socket(node, attacker.cookie());
    r.eq(`S1: the attacker's socket on ${node.name} does not see the victim's session`, await ask(spy, "session:get"), MISSING);
    r.eq(`S1: ... nor writes to it`, await ask(spy, "session:inc"), MISSING);
  }
  plant();
  const write = await r.json(attacker, A, "/api/session");
  r.ok(
    "H2: HTTP /api/session on A with the copied cookie writes a session of the attacker's own",
    write.ok === true && write.sessionId !== vsid && write.session?.user === undefined && write.session?.httpCount === 1,
    show(write),
  );

  const mine = await r.json(victim, B, "/api/read");
  r.eq("the victim's session is intact, read on B: [sessionId, user, httpCount, wsCount]", [
    mine.sessionId,
    mine.session?.user,
    mine.session?.httpCount,
    mine.session?.wsCount,
  ], [vsid, "victim", undefined, undefined]);
  const own = await r.socket(B, victim.cookie());
  await r.bound(own, B, vsid, "the victim's own socket on B still sees it", "victim");
}

/**
 * h. H2 H8 S1 S2: a request carrying only the victim's client cookie, no session cookie, that
 * writes the session on one node gets a new client id and a session of its own; the victim's
 * socket on the other node stays on the victim's session. Both ways round.
 */
async function captureAcross(r) {
  const { A, B } = r;
  for (const [V, X] of [
    [A, B],
    [B, A],
  ]) {
    const victim = r.browser();
    const login = await r.login(victim, V, "victim");
    const vsid = login.sessionId;
    const vcid = victim.jar.get(CLIENT_COOKIE);
    const s = await r.socket(V, victim.cookie());
    await r.bound(s, V, vsid, `the victim's socket on ${V.name} is bound to the victim's session and sees user victim`, "victim");

    // The attacker holds the victim's client cookie only (app.sid.cid, no app.sid).
    const attacker = r.browser();
    attacker.jar.set(CLIENT_COOKIE, vcid);
    const planted = await r.get(attacker, X, "/api/user?name=planted");
    r.eq(
      `the attacker's /api/user?name=planted on ${X.name} with only the victim's client cookie answers: [status, ok, user]`,
      [planted.status, planted.body?.ok, planted.body?.session?.user],
      [200, true, "planted"],
    );

    // The victim's side first: what the capture would change.
    await r.bound(
      s,
      V,
      vsid,
      `H2/S2: after the attacker's write on ${X.name}, the victim's socket on ${V.name} still reads the victim's session: [ok, sessionId, user]`,
      "victim",
    );
    const inc = await ask(s, "session:inc");
    r.eq(
      `S2: the victim's socket's session:inc on ${V.name} writes the victim's session: [ok, sessionId, user, wsCount]`,
      [inc.ok, inc.sessionId, inc.session?.user, inc.session?.wsCount],
      [true, vsid, "victim", 1],
    );
    for (const node of [V, X]) {
      const read = await r.json(victim, node, "/api/read");
      r.eq(
        `H2: the victim's HTTP /api/read on ${node.name} is unchanged, with its socket's write: [sessionId, clientId, user, wsCount]`,
        [read.sessionId, read.clientId, read.session?.user, read.session?.wsCount],
        [vsid, login.clientId, "victim", 1],
      );
    }

    // The attacker's side: a client and a session of its own.
    r.ok(
      `H2/H8: the attacker's request got a NEW client id (a Set-Cookie ${CLIENT_COOKIE} with another value)`,
      planted.setCookies.includes(CLIENT_COOKIE) &&
        attacker.jar.get(CLIENT_COOKIE) !== vcid &&
        typeof planted.body?.clientId === "string" &&
        planted.body.clientId !== login.clientId,
      show({ setCookies: planted.setCookies, clientId: planted.body?.clientId, victimClientId: login.clientId }),
    );
    r.ok(
      "H2: ... and a new session of its own",
      typeof planted.body?.sessionId === "string" && planted.body.sessionId !== vsid,
      show(planted.body),
    );
    for (const node of [X, V]) {
      const theirs = await r.json(attacker, node, "/api/read");
      r.eq(
        `H2/S1: the attacker's HTTP /api/read on ${node.name} shows its own session, never the victim's data: [sessionId, clientId, user, wsCount]`,
        [theirs.sessionId, theirs.clientId, theirs.session?.user, theirs.session?.wsCount],
        [planted.body.sessionId, planted.body.clientId, "planted", undefined],
      );
    }
    await r.bound(s, V, vsid, `S2: the victim's socket on ${V.name} ends on the victim's session`, "victim");
  }
}

/**
 * i. C4: the attacker's own complete pair planted before the victim's (sent first): two
 * different pairs that both verify and both belong together trust neither, over HTTP on A and
 * over a socket on B; nothing the victim does reaches the attacker's session.
 */
async function tiedPairsAcross(r) {
  const { A, B } = r;
  const attacker = r.browser();
  const mallory = await r.login(attacker, B, "mallory");
  const victim = r.browser();
  const login = await r.login(victim, A, "victim");
  const vsid = login.sessionId;
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
  const tied = new HandBuiltCookies(A.base, header);

  const read = await r.json(tied, A, "/api/read");
  r.eq(
    "C4: HTTP /api/read on A with both pairs reads no session (never the attacker's): [sessionId, user, session]",
    [read.sessionId ?? null, read.session?.user, read.session ?? {}],
    [null, undefined, {}],
  );
  const s = await r.socket(B, header);
  r.eq("C4: a socket on B opened with both pairs: session:get answers missing-session, never the attacker's session", await ask(s, "session:get"), MISSING);
  r.eq("C4: ... and its session:inc writes nothing", await ask(s, "session:inc"), MISSING);
  const write = await r.json(tied, A, "/api/session");
  r.ok(
    "C4: HTTP /api/session on A with both pairs writes a new session, neither the attacker's nor the victim's",
    write.ok === true &&
      typeof write.sessionId === "string" &&
      write.sessionId !== mallory.sessionId &&
      write.sessionId !== vsid &&
      write.session?.user === undefined &&
      write.session?.httpCount === 1,
    show(write),
  );
  r.eq("C4: ... and the socket on B still gets missing-session", await ask(s, "session:get"), MISSING);

  for (const node of [B, A]) {
    const theirs = await r.json(attacker, node, "/api/read");
    r.eq(
      `C4: the attacker's session is untouched, read on ${node.name}: [sessionId, user, httpCount, wsCount]`,
      [theirs.sessionId, theirs.session?.user, theirs.session?.httpCount, theirs.session?.wsCount],
      [mallory.sessionId, "mallory", undefined, undefined],
    );
  }
  const mine = await r.json(victim, B, "/api/read");
  r.eq(
    "C4: the victim's session is untouched too (neither pair was trusted), read on B: [sessionId, user, httpCount, wsCount]",
    [mine.sessionId, mine.session?.user, mine.session?.httpCount, mine.session?.wsCount],
    [vsid, "victim", undefined, undefined],
  );
  const own = await r.socket(B, victim.cookie());
  await r.bound(own, B, vsid, "the victim's own pair alone still binds a socket on B to the victim's session", "victim");
}

// -- the outage run (M4) --------------------------------------------------------------------

let stdinLines;

/** Prints `WAIT <word>` and waits (bounded) for the line `<word>` on stdin. */
async function signal(word) {
  console.log(`WAIT ${word}`);
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const next = await within(stdinLines.next(), `the driver's "${word}" on stdin`, SIGNAL_TIMEOUT_MS);
  if (next.done || next.value.trim() !== word) {
    throw new CheckFailed(`expected "${word}" on stdin, got ${next.done ? "end of input" : show(next.value)}`);
  }
}

/** A browser with a session (a login on A) and a bound socket on each node, held open. */
async function holdSession(r, state) {
  const { A, B } = r;
  const b = r.browser();
  const login = await r.login(b, A, "held");
  const sockets = [];
  for (const node of [A, B]) {
    const s = await r.socket(node, b.cookie(), { hold: true });
    await r.bound(s, node, login.sessionId);
    sockets.push([node, s]);
  }
  state.held = { b, sockets };
}

const LOAD_USER = "load";

/** The counters of a session, `{ h: httpCount, w: wsCount }` (absent counts 0). */
const countsOf = (session) => ({ h: session?.httpCount ?? 0, w: session?.wsCount ?? 0 });

/** Sorted numbers -> the ones that occur more than once. */
const repeatedIn = (sorted) => [...new Set(sorted.filter((n, i) => i > 0 && n === sorted[i - 1]))];

/**
 * One `session:inc` of the load on `s`, acked within LOAD_ANSWER_MS: `{ outcome, counts,
 * detail }`, outcome `ok` (on the session `sid`, whole: its user and a wsCount), `error` (a
 * clean one: `ok: false` with an error string), `missing` (missing-session), `bad` (anything
 * else) or `no answer` (no ack in time). Never throws.
 */
async function loadInc(s, sid) {
  let ack;
  try {
    ack = await within(s.timeout(LOAD_ANSWER_MS).emitWithAck("session:inc"), "ack of session:inc", LOAD_ANSWER_MS + 500);
  } catch (err) {
    return { outcome: "no answer", detail: err.message };
  }
  if (ack?.ok === true && ack.sessionId === sid && ack.session?.user === LOAD_USER && Number.isInteger(ack.session?.wsCount)) {
    return { outcome: "ok", counts: countsOf(ack.session) };
  }
  if (ack?.ok === false && ack.error === MISSING.error) return { outcome: "missing", detail: show(ack) };
  if (ack?.ok === false && typeof ack.error === "string" && ack.error !== "") return { outcome: "error", detail: ack.error };
  return { outcome: "bad", detail: show(ack) };
}

/**
 * One HTTP `/api/session` of the load with `b` on `node`, answered within LOAD_ANSWER_MS:
 * outcome `ok` (200, ok, on the session `sid`, whole: its user and an httpCount), `error` (a
 * clean one: 500 with an empty body), `bad` or `no answer`, as `loadInc`. Never throws.
 */
async function loadHttp(b, node, sid) {
  let res;
  try {
    res = await b.get("/api/session", node.base, LOAD_ANSWER_MS);
  } catch (err) {
    return { outcome: "no answer", detail: reason(err) };
  }
  const body = res.body;
  if (
    res.status === 200 &&
    body?.ok === true &&
    body.sessionId === sid &&
    body.session?.user === LOAD_USER &&
    Number.isInteger(body.session?.httpCount)
  ) {
    return { outcome: "ok", counts: countsOf(body.session) };
  }
  if (res.status === 500 && body === "") return { outcome: "error", detail: "500" };
  return { outcome: "bad", detail: `${res.status} ${show(body)}` };
}

/**
 * The closed loop `loop`: `call()` again and again (a short pause after a failure) until
 * `ctl.stop`; each answer pushed to `answers` with its loop, node, kind, when it was sent and
 * answered.
 */
async function loadLoop(loop, node, kind, call, answers, ctl) {
  while (!ctl.stop) {
    const sent = Date.now();
    const got = await call();
    const at = Date.now();
    answers.push({ loop, node: node.name, kind, sent, at, ms: at - sent, ...got });
    if (got.outcome !== "ok") await sleep(LOAD_ERROR_PAUSE_MS);
  }
}

/** A line about `answers` of one node: how many of each outcome per kind, the slowest, the errors. */
function loadSummary(name, answers, times) {
  const parts = [];
  for (const kind of ["inc", "http"]) {
    const of = answers.filter((a) => a.kind === kind);
    const by = {};
    for (const a of of) by[a.outcome] = (by[a.outcome] ?? 0) + 1;
    const errors = [...new Set(of.filter((a) => a.outcome !== "ok").map((a) => a.detail))];
    const firstError = of.filter((a) => a.outcome !== "ok").map((a) => a.at - times.printed).sort((x, y) => x - y)[0];
    parts.push(
      `${kind === "inc" ? "session:inc" : "HTTP /api/session"} ${show(by)}, slowest ${Math.max(0, ...of.map((a) => a.ms))} ms` +
        (errors.length ? `, first failure ${firstError} ms after WAIT down: ${show(errors.slice(0, 4))}` : ""),
    );
  }
  return `     (${name}: ${parts.join("; ")})`;
}

/**
 * M4: Redis dies under load. A browser logged in on A, LOAD_SOCKETS sockets on each node in
 * closed loops of `session:inc`, and closed loops of HTTP `/api/session` on both nodes, all on
 * the one session; `WAIT down` once it runs (the load still running), then LOAD_AFTER_KILL_MS
 * more after the driver's `down` (until each loop had an answer to a request sent after it,
 * bounded). Every answer is a success or a clean error within
 * LOAD_ANSWER_MS; the writes answered ok are distinct successive states of the session.
 */
async function killUnderLoad(r, state) {
  const { A, B } = r;
  const b = r.browser();
  const login = await r.login(b, A, LOAD_USER);
  const sid = login.sessionId;
  const base = countsOf(login.session);
  const sockets = [];
  for (const node of [A, B]) {
    for (let i = 0; i < LOAD_SOCKETS; i++) sockets.push([node, await r.socket(node, b.cookie())]);
  }
  const bound = [];
  for (const [, s] of sockets) {
    const got = await ask(s, "session:get");
    bound.push([got.ok, got.sessionId]);
  }
  r.eq(`the ${sockets.length} load sockets (${LOAD_SOCKETS} on A, ${LOAD_SOCKETS} on B) are bound to the session`, bound, sockets.map(() => [true, sid]));

  const answers = [];
  const ctl = { stop: false };
  const calls = [
    ...sockets.map(([node, s]) => [node, "inc", () => loadInc(s, sid)]),
    ...[A, B].map((node) => [node, "http", () => loadHttp(b, node, sid)]),
  ];
  const loops = calls.map(([node, kind, call], loop) => loadLoop(loop, node, kind, call, answers, ctl));
  const okOf = (node, kind) => answers.filter((a) => a.node === node.name && a.kind === kind && a.outcome === "ok").length;
  const started = Date.now();
  const times = {};
  try {
    const warm = () =>
      Date.now() - started >= LOAD_WARMUP_MS &&
      [A, B].every((node) => okOf(node, "inc") >= LOAD_MIN_INCS && okOf(node, "http") >= LOAD_MIN_HTTP);
    while (!warm()) {
      if (Date.now() - started > LOAD_WARMUP_LIMIT_MS) {
        const first = answers.find((a) => a.outcome !== "ok");
        throw new CheckFailed(
          `the load did not get going within ${LOAD_WARMUP_LIMIT_MS} ms: ok session:inc / HTTP on A ${okOf(A, "inc")} / ${okOf(A, "http")}, ` +
            `on B ${okOf(B, "inc")} / ${okOf(B, "http")}; the first failure: ${show(first)}`,
        );
      }
      await sleep(20);
    }
    for (const node of [A, B]) {
      r.pass(
        `M4: the load runs on ${node.name} before the kill (${okOf(node, "inc")} session:inc and ${okOf(node, "http")} HTTP /api/session answered ok in ${Date.now() - started} ms)`,
      );
    }
    times.printed = Date.now();
    await signal("down"); // the load keeps running while the driver kills Redis
    state.down = true;
    times.down = Date.now();
    const answeredAfter = () => new Set(answers.filter((a) => a.sent > times.down).map((a) => a.loop)).size === loops.length;
    while (Date.now() - times.down < LOAD_AFTER_KILL_MS || !answeredAfter()) {
      if (Date.now() - times.down > LOAD_AFTER_KILL_LIMIT_MS) break; // judged below
      await sleep(20);
    }
    times.stopped = Date.now();
  } finally {
    ctl.stop = true;
  }
  await within(Promise.all(loops), "the last answers of the load", LOAD_ANSWER_MS + 2_000);
  console.log(`     (the load stopped ${times.stopped - times.down} ms after the driver's down)`);
  for (const node of [A, B]) console.log(loadSummary(node.name, answers.filter((a) => a.node === node.name), times));

  for (const node of [A, B]) {
    const mine = answers.filter((a) => a.node === node.name);
    for (const [kind, what, clean] of [
      ["inc", "session:inc ack", "ok on the session, or ok: false with an error string and not missing-session"],
      ["http", "HTTP /api/session answer", "200 ok on the session, or 500 with an empty body"],
    ]) {
      const of = mine.filter((a) => a.kind === kind);
      const late = of.filter((a) => a.outcome === "no answer" || a.ms > LOAD_ANSWER_MS);
      r.ok(
        `M4: every ${what} of the load on ${node.name} came within ${LOAD_ANSWER_MS} ms (${of.length}, the slowest in ${Math.max(0, ...of.map((a) => a.ms))} ms)`,
        late.length === 0,
        `${late.length} did not: ${show(late.slice(0, 3))}`,
      );
      const unclean = of.filter((a) => a.outcome !== "ok" && a.outcome !== "error");
      r.ok(`M4: ... each one ${clean}`, unclean.length === 0, `${unclean.length} not: ${show(unclean.slice(0, 3))}`);
    }
    const before = mine.filter((a) => a.at <= times.printed);
    const failed = before.filter((a) => a.outcome !== "ok");
    r.ok(
      `M4: before the kill (answered before WAIT down) every answer on ${node.name} was a success (${before.length})`,
      failed.length === 0,
      `${failed.length} not: ${show(failed.slice(0, 3))}`,
    );
    const after = mine.filter((a) => a.sent > times.down);
    const served = after.filter((a) => a.outcome !== "error");
    const kinds = ["inc", "http"].map((k) => after.filter((a) => a.kind === k).length);
    r.ok(
      `M4: with Redis down (sent after the driver's down) every answer on ${node.name} was a clean error (${kinds[0]} session:inc, ${kinds[1]} HTTP)`,
      served.length === 0 && kinds.every((n) => n > 0),
      served.length
        ? `${served.length} not: ${show(served.slice(0, 3))}`
        : `no answer of one kind to a request sent within ${LOAD_AFTER_KILL_LIMIT_MS} ms after the kill`,
    );
  }

  const incs = answers.filter((a) => a.kind === "inc");
  const okIncs = incs.filter((a) => a.outcome === "ok");
  const ws = okIncs.map((a) => a.counts.w).sort((x, y) => x - y);
  const wsRepeated = repeatedIn(ws);
  r.ok(
    `M4: the ${okIncs.length} session:inc acked ok on A and B (${okIncs.filter((a) => a.at <= times.printed).length} before WAIT down) saw ${okIncs.length} distinct wsCounts: no acked increment lost or counted twice`,
    okIncs.length > 0 && wsRepeated.length === 0 && ws[0] > base.w && ws.at(-1) <= base.w + incs.length,
    `${new Set(ws).size} distinct of ${ws.length}, from ${ws[0]} to ${ws.at(-1)} (${incs.length} sent after ${base.w}), repeated: ${show(wsRepeated.slice(0, 20))}`,
  );
  const https = answers.filter((a) => a.kind === "http");
  const okHttp = https.filter((a) => a.outcome === "ok");
  const hs = okHttp.map((a) => a.counts.h).sort((x, y) => x - y);
  const hsRepeated = repeatedIn(hs);
  r.ok(
    `M4: the ${okHttp.length} HTTP /api/session answered ok on A and B saw ${okHttp.length} distinct httpCounts: no write lost or counted twice`,
    okHttp.length > 0 && hsRepeated.length === 0 && hs[0] > base.h && hs.at(-1) <= base.h + https.length,
    `${new Set(hs).size} distinct of ${hs.length}, from ${hs[0]} to ${hs.at(-1)} (${https.length} sent after ${base.h}), repeated: ${show(hsRepeated.slice(0, 20))}`,
  );
  // Each ok answer is the session right after its own write, under the session's exclusion:
  // they are successive states of one session, never one half-written or written twice.
  const states = [...okIncs, ...okHttp].map((a) => a.counts).sort((x, y) => x.h + x.w - (y.h + y.w));
  const at = states.findIndex((st, i) => {
    const prev = i === 0 ? base : states[i - 1];
    return !(st.h >= prev.h && st.w >= prev.w && st.h + st.w > prev.h + prev.w);
  });
  r.ok(
    `M4: no half-written session: the ${states.length} ok answers are ${states.length} successive states of it (httpCount and wsCount only grow, none seen twice)`,
    at < 0,
    `after ${show(at > 0 ? states[at - 1] : base)} came ${show(states[at])}`,
  );
  const dropped = sockets.filter(([, s]) => !s.connected).map(([node]) => node.name);
  r.ok(`M4: the ${sockets.length} load sockets are still connected`, dropped.length === 0, `disconnected: ${show(dropped)}`);
}

/** M4: Redis is down: clean, fast errors on both nodes, over HTTP and over sockets. */
async function duringOutage(r, state) {
  if (!state.down) await signal("down"); // when the load run failed before it asked
  const { b, sockets } = state.held;
  for (const node of [r.A, r.B]) {
    for (const [who, browser] of [
      ["the held browser", b],
      ["a new browser", r.browser()],
    ]) {
      const t0 = Date.now();
      const res = await r.get(browser, node, "/api/session");
      const ms = Date.now() - t0;
      r.eq(`M4/ST4: HTTP /api/session on ${node.name} (${who}) during the outage: [status, body]`, [res.status, res.body], [500, ""]);
      r.ok(`M4: ... answered within ${OUTAGE_ANSWER_MS} ms (in ${ms} ms)`, ms < OUTAGE_ANSWER_MS, `${ms} ms`);
    }
  }
  for (const [node, s] of sockets) {
    for (const event of ["session:get", "session:inc"]) {
      const t0 = Date.now();
      const ack = await ask(s, event);
      const ms = Date.now() - t0;
      r.ok(
        `M4: ${event} on ${node.name}'s socket during the outage answers an error (ok: false, not missing-session)`,
        ack?.ok === false && typeof ack.error === "string" && ack.error !== MISSING.error,
        show(ack),
      );
      r.ok(`M4: ... within ${OUTAGE_ANSWER_MS} ms (in ${ms} ms: ${show(ack?.error)})`, ms < OUTAGE_ANSWER_MS, `${ms} ms`);
    }
  }
  await signal("up");
  state.upAt = Date.now();
}

/** M4: Redis is back (empty): both nodes serve again by themselves, within RECOVERY_MS. */
async function afterOutage(r, state) {
  for (const node of [r.A, r.B]) {
    let last = "nothing yet";
    for (;;) {
      try {
        const res = await r.browser().get("/api/session", node.base);
        if (res.status === 200 && res.body?.ok === true) break;
        last = `${res.status} ${show(res.body)}`;
      } catch (err) {
        last = reason(err);
      }
      if (Date.now() - state.upAt > RECOVERY_MS) {
        throw new CheckFailed(`M4: ${node.name} does not serve ${RECOVERY_MS} ms after Redis came back; its last answer: ${last}`);
      }
      await sleep(100);
    }
    r.pass(`M4: ${node.name} serves a new browser again, ${Date.now() - state.upAt} ms after Redis came back`);
  }
  const { b, sockets } = state.held;
  const again = await r.get(b, r.A, "/api/session");
  r.eq(
    "M4: the held browser is served again on A (its old session is lost: Redis kept nothing)",
    [again.status, again.body?.ok],
    [200, true],
  );
  for (const [node, s] of sockets) {
    const ack = await ask(s, "session:get");
    r.ok(`M4: the held socket on ${node.name} still gets answers`, typeof ack?.ok === "boolean", show(ack));
  }
}

// -- main -------------------------------------------------------------------------------

const SCENARIOS = [
  ["a", "M1: a login over HTTP on A is the session of a socket on B", loginSeenAcross],
  ["b", "M1 M3: live: B's socket follows HTTP writes on A (session:get and a session:changed push)", liveAcross],
  ["c", "M2: HTTP on B and session:inc on A, interleaved and overlapping: no update lost, and exclusion across nodes", interleavedAcross],
  ["d", "M2: 2 x 100 concurrent session:inc split across A and B", (r) => concurrentAcross(r, 100)],
  ["e", "M3 S6: /api/logout on A ends the session of B's socket", logoutAcross],
  ["f", "M1 M3 S6 H8: /api/login on A regenerates; B's socket hears it and rebinds", regenerateAcross],
  ["g", "H2 S1: a copied session cookie is ignored on both nodes", copiedCookieAcross],
  ["h", "H2 H8 S1 S2: the victim's client cookie alone never moves the victim's socket into the attacker's session", captureAcross],
  ["i", "C4: two tied pairs (the attacker's planted first) trust neither, over HTTP on A and a socket on B", tiedPairsAcross],
];

const OUTAGE_RUN = [
  ["a", "before the outage: a login over HTTP on A is the session of a socket on B", loginSeenAcross],
  ["hold", "before the outage: a session held open with a socket on each node", holdSession],
  ["kill", "M4: Redis killed under load on both nodes: successes or clean errors, bounded, no acked write lost", killUnderLoad],
  ["outage", "M4: Redis down: clean, fast errors on both nodes", duringOutage],
  ["back", "M4: Redis back: both nodes serve again by themselves", afterOutage],
  ["a", "after the outage: a new login on A is the session of a socket on B", loginSeenAcross],
  ["d", "after the outage: 2 x 50 concurrent session:inc split across A and B", (r) => concurrentAcross(r, 50)],
  ["e", "after the outage: /api/logout on A still reaches B's socket (the notices came back too)", logoutAcross],
];

async function main() {
  const args = process.argv.slice(2);
  const outage = args.includes("--outage");
  const bases = args.filter((a) => !a.startsWith("--"));
  if (bases.length !== 2) fail(`usage: ${USAGE}  (got ${show(args)})`);
  const A = { name: "A", base: baseUrl(bases[0], USAGE) };
  const B = { name: "B", base: baseUrl(bases[1], USAGE) };
  boundRun(RUN_TIMEOUT_MS);

  const plan = outage ? OUTAGE_RUN : SCENARIOS;
  const state = {};
  const started = Date.now();
  let checks = 0;
  const failed = [];
  for (const [tag, title, scenario] of plan) {
    console.log(`---- [${tag}] ${title}`);
    const r = new Pair(tag, A, B);
    const t0 = Date.now();
    try {
      await scenario(r, state);
    } catch (err) {
      r.close();
      const line = `[${tag}] ${title}: ${reason(err)}`;
      if (!KEEP_GOING) fail(line);
      console.log(`FAIL ${line}`);
      failed.push(tag);
      continue;
    }
    r.close();
    checks += r.checks;
    console.log(`     (${Date.now() - t0} ms)`);
  }
  for (const s of held) s.disconnect();
  if (failed.length) {
    console.log(`FAILED scenarios ${failed.join(", ")} of ${plan.length}; ${checks} checks of the others passed`);
    process.exit(1);
  }
  console.log(`PASS ${checks} checks, ${plan.length} scenarios${outage ? " around a Redis outage" : ""} in ${Date.now() - started} ms`);
  process.exit(0);
}

await main();
