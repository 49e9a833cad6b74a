// What the Node scenario scripts share (quick_start_scenario.mjs, two_nodes.mjs): the Quick
// Start protocol's names, bounded awaits, a cookie jar, check counting, socket.io helpers and
// the closing `PASS <n> checks` / `FAIL ...` lines.
//
// Every await here is bounded (STEP_TIMEOUT_MS unless told), so a script never hangs on a
// server that does not answer.

import { isDeepStrictEqual } from "node:util";
import { io } from "socket.io-client";

export const STEP_TIMEOUT_MS = 5_000;
export const SESSION_COOKIE = "app.sid";
export const CLIENT_COOKIE = "app.sid.cid";
export const MISSING = { ok: false, error: "missing-session" };
export const SESSION_ENDED = "session:ended";
export const SESSION_CHANGED = "session:changed";

export const WEBSOCKET = { name: "websocket", transports: ["websocket"], upgrade: false, final: "websocket" };
export const TRANSPORTS = [
  WEBSOCKET,
  { name: "polling", transports: ["polling"], upgrade: false, final: "polling" },
  { name: "polling+upgrade", transports: ["polling", "websocket"], upgrade: true, final: "websocket" },
];

/** A failed check or a step that did not happen in time: reported as `FAIL <message>`. */
export class CheckFailed extends Error {}

export const show = (v) => JSON.stringify(v);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects when `promise` has not settled within `ms`. */
export function within(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A browser: a cookie jar following `Set-Cookie`, sending it back on every request. */
export class Browser {
  constructor(base) {
    this.base = base;
    this.jar = new Map();
  }

  cookie() {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  /** Applies `Set-Cookie` lines to the jar; returns the names they set or cleared. */
  absorb(lines) {
    const names = [];
    for (const line of lines) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v = ""] = a.split("=").map((s) => s.trim());
        if (/^max-age$/i.test(k)) return Number(v) <= 0;
        if (/^expires$/i.test(k)) return Date.parse(v) <= Date.now();
        return false;
      });
      if (expired || value === "") this.jar.delete(name);
      else this.jar.set(name, value);
      names.push(name);
    }
    return names;
  }

  /**
   * GET `path` with the jar, from `base` (default: this browser's; the jar is one for every
   * base, as a browser's cookies for 127.0.0.1 are whatever the port); `{ status, setCookies,
   * body }` (body parsed as JSON when it is). The headers and the body each within `ms`.
   */
  async get(path, base = this.base, ms = STEP_TIMEOUT_MS) {
    const cookie = this.cookie();
    const headers = cookie ? { cookie } : {};
    const res = await within(
      fetch(new URL(path, base), { headers, redirect: "manual" }),
      `GET ${path}`,
      ms,
    ).catch((err) => {
      if (err instanceof CheckFailed) throw err;
      const cause = err?.cause?.code ?? err?.cause?.message ?? "";
      throw new CheckFailed(`GET ${path}: ${err.message}${cause ? ` (${cause})` : ""}`);
    });
    const text = await within(res.text(), `body of GET ${path}`, ms);
    const setCookies = this.absorb(res.headers.getSetCookie());
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, setCookies, body };
  }
}

/**
 * A browser whose Cookie header is exactly `header`, built by hand: a name may repeat, in the
 * order given (as when a sibling subdomain planted cookies of its own with a longer Path, which
 * the browser sends first). `Set-Cookie` still fills the jar but never changes what it sends.
 */
export class HandBuiltCookies extends Browser {
  constructor(base, header) {
    super(base);
    this.header = header;
  }

  cookie() {
    return this.header;
  }
}

/** `GET path` (from `base`) that must answer 200 with a JSON object; returns that object. */
export async function json(b, path, base = b.base) {
  const res = await b.get(path, base);
  if (res.status !== 200 || typeof res.body !== "object" || res.body === null) {
    throw new CheckFailed(`GET ${path}: expected 200 with a JSON object, got ${res.status} ${show(res.body)}`);
  }
  return res.body;
}

/** `GET /api/session` (from `base`) answering `ok: true`. */
export async function touch(b, base = b.base) {
  const r = await json(b, "/api/session", base);
  if (r.ok !== true || typeof r.sessionId !== "string") {
    throw new CheckFailed(`GET /api/session: expected ok and a sessionId, got ${show(r)}`);
  }
  return r;
}

/** Counts checks and prints a line per check, `ok   [<tag>] <label>`; throws on a failed one. */
export class Checker {
  constructor(tag) {
    this.tag = tag;
    this.checks = 0;
  }

  pass(label) {
    this.checks += 1;
    console.log(`ok   [${this.tag}] ${label}`);
  }

  ok(label, cond, detail = "") {
    if (!cond) throw new CheckFailed(`${label}${detail ? `: ${detail}` : ""}`);
    this.pass(label);
  }

  eq(label, actual, expected) {
    this.ok(label, isDeepStrictEqual(actual, expected), `expected ${show(expected)}, got ${show(actual)}`);
  }
}

/**
 * A socket.io client for `base` on `transport`, with `cookie` (none when empty) and `origin`
 * (none when empty) as handshake headers, never reconnecting by itself. Await `ready` on it.
 */
export function openSocket(base, transport, { cookie = "", origin = new URL(base).origin } = {}) {
  const extraHeaders = {};
  if (cookie) extraHeaders.cookie = cookie;
  if (origin) extraHeaders.origin = origin;
  return io(base, {
    transports: transport.transports,
    upgrade: transport.upgrade,
    forceNew: true,
    reconnection: false,
    timeout: STEP_TIMEOUT_MS,
    extraHeaders,
  });
}

/**
 * Resolves once `socket` (its engine just opened) is connected and, for an upgrading
 * transport, upgraded; rejects on `connect_error` with `err.connectError` set; bounded.
 */
export function ready(socket, transport) {
  const settled = new Promise((resolve, reject) => {
    let connected = false;
    let upgraded = !transport.upgrade;
    const settle = () => connected && upgraded && resolve(socket);
    socket.io.engine.on("upgrade", () => {
      upgraded = true;
      settle();
    });
    socket.once("connect", () => {
      connected = true;
      if (socket.io.engine.transport.name === "websocket") upgraded = true;
      settle();
    });
    socket.once("connect_error", (err) => {
      const e = new CheckFailed(`connect_error: ${err.message}`);
      e.connectError = err;
      reject(e);
    });
  });
  return within(settled, `${transport.name} connect${transport.upgrade ? " and upgrade" : ""}`);
}

/**
 * What a browser does after `session:ended`: the same socket disconnects and connects again,
 * a new handshake carrying `cookie` (the browser's cookies now). Resolves once it is ready.
 */
export function reconnect(socket, cookie, transport) {
  socket.disconnect();
  const extraHeaders = { ...(socket.io.opts.extraHeaders ?? {}) };
  if (cookie) extraHeaders.cookie = cookie;
  else delete extraHeaders.cookie;
  socket.io.opts.extraHeaders = extraHeaders;
  socket.connect();
  return ready(socket, transport);
}

/**
 * The payload of the next `event` that `socket` receives from now on, bounded by `ms`; call
 * it before what should cause the event, await it after.
 */
export function nextEvent(socket, event, what, ms = STEP_TIMEOUT_MS) {
  let listener;
  const next = within(
    new Promise((resolve) => {
      listener = resolve;
      socket.once(event, listener);
    }),
    what,
    ms,
  ).finally(() => socket.off(event, listener));
  next.catch(() => {}); // awaited by the caller; this only avoids an unhandled rejection meanwhile
  return next;
}

/** Emits `event` with `args` and an ack; the ack's value (bounded). */
export async function ask(socket, event, ...args) {
  try {
    return await within(
      socket.timeout(STEP_TIMEOUT_MS).emitWithAck(event, ...args),
      `ack of ${event}`,
      STEP_TIMEOUT_MS + 1_000,
    );
  } catch (err) {
    throw new CheckFailed(`${event}: no ack (${err.message})`);
  }
}

/** Prints `FAIL <message>` and exits 1. */
export function fail(message) {
  console.log(`FAIL ${message}`);
  process.exit(1);
}

/** Bounds the whole run to `ms` and turns an unhandled rejection into a FAIL line. */
export function boundRun(ms) {
  setTimeout(() => fail(`the whole run exceeded ${ms} ms`), ms).unref();
  process.on("unhandledRejection", (err) => fail(`unhandled rejection: ${err?.stack ?? err}`));
}

/** The message of a scenario's error: a failed check's own, else the stack. */
export function reason(err) {
  return err instanceof CheckFailed ? err.message : (err?.stack ?? String(err));
}

/** `arg` as a base URL, or a FAIL line with `usage`. */
export function baseUrl(arg, usage) {
  try {
    return new URL(arg).href;
  } catch {
    return fail(`usage: ${usage}  (got ${show(arg)})`);
  }
}
