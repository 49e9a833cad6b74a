// The socket side of benches/load: a closed-loop socket.io load client.
//
//   node sockets.mjs --base http://127.0.0.1:PORT --pid SERVER_PID --event session:inc \
//     --sockets 50 --sessions each|one --seconds 10 [--warmup 1] [--clk-tck 100]
//
// It first logs in over HTTP the way a browser does (`GET /api/session` without cookies, and
// every `name=value` of the `Set-Cookie` lines kept): once per socket (`--sessions each`, every
// socket its own browser and session) or once for all (`--sessions one`, every socket on the
// same session: lock contention). Then it connects the sockets (websocket transport only, the
// cookies and a same-origin `Origin` in `extraHeaders`, as tests/e2e/quick_start_scenario.mjs
// does), and each socket emits `--event`, waits for its ack, emits the next, and so on. After
// `--warmup` seconds (not counted) it reads the server's CPU time (utime + stime of
// /proc/PID/stat), counts acks and their latencies for `--seconds`, reads the CPU time again,
// and prints ONE JSON line:
//
//   {"event":..,"sockets":..,"sessions":..,"seconds":..,"acks":..,"acksPerSec":..,
//    "p50Ms":..,"p99Ms":..,"cpuSec":..,"cpuUsPerAck":..,"errors":0}
//
// Every await is bounded, and so is the whole process (a hard exit timer), so it never hangs.
// An ack that is not `{ ok: true, ... }` counts as an error and makes the exit status 1.

import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

const args = parseArgs(process.argv.slice(2));
const base = required("base");
const pid = Number(required("pid"));
const event = required("event");
const sockets = Number(args.sockets ?? 1);
const sessions = args.sessions ?? "each";
const seconds = Number(args.seconds ?? 10);
const warmup = Number(args.warmup ?? 1);
const clkTck = Number(args["clk-tck"] ?? 100);
const STEP_TIMEOUT_MS = 10_000;

// The whole run, bounded: login + connect + warmup + measure + a margin.
const hardExit = setTimeout(() => {
  console.error(`sockets.mjs: timed out (${event}, ${sockets} sockets)`);
  process.exit(3);
}, (warmup + seconds) * 1000 + 60_000);
hardExit.unref();

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--")) throw new Error(`unexpected argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

function required(name) {
  if (args[name] === undefined) {
    console.error(`sockets.mjs: --${name} is required`);
    process.exit(2);
  }
  return args[name];
}

/** utime + stime of the server, in seconds. */
function serverCpu() {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after "pid (comm) ": state is field 3, utime 14, stime 15 (1-based).
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / clkTck;
}

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One browser's login: `GET /api/session` without cookies; the `name=value` pairs it set. */
async function login() {
  const res = await within(fetch(new URL("/api/session", base)), STEP_TIMEOUT_MS, "GET /api/session");
  await res.text();
  if (res.status !== 200) throw new Error(`GET /api/session answered ${res.status}`);
  const pairs = res.headers.getSetCookie().map((line) => line.split(";")[0].trim());
  if (!pairs.some((p) => p.startsWith("app.sid="))) {
    throw new Error(`GET /api/session set no app.sid cookie: ${pairs.join("; ")}`);
  }
  return pairs.join("; ");
}

function connect(cookie) {
  const socket = io(base, {
    transports: ["websocket"],
    upgrade: false,
    forceNew: true,
    reconnection: false,
    timeout: STEP_TIMEOUT_MS,
    extraHeaders: { cookie, origin: new URL(base).origin },
  });
  const ready = new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
  return within(ready, STEP_TIMEOUT_MS, "socket connect");
}

const state = { stop: false, measuring: false, acks: 0, errors: 0, firstError: null };
const latencies = [];

async function closedLoop(socket) {
  while (!state.stop) {
    const started = process.hrtime.bigint();
    let reply;
    try {
      reply = await socket.timeout(STEP_TIMEOUT_MS).emitWithAck(event);
    } catch (err) {
      reply = { ok: false, error: err.message };
    }
    if (!state.measuring) continue;
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    state.acks += 1;
    if (reply?.ok !== true) {
      state.errors += 1;
      state.firstError ??= reply;
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

async function main() {
  const cookies = [];
  if (sessions === "one") {
    const cookie = await login();
    for (let i = 0; i < sockets; i += 1) cookies.push(cookie);
  } else {
    for (let i = 0; i < sockets; i += 1) cookies.push(await login());
  }
  const all = await Promise.all(cookies.map(connect));
  const loops = all.map(closedLoop);
  await sleep(warmup * 1000);
  const cpu0 = serverCpu();
  const t0 = process.hrtime.bigint();
  state.measuring = true;
  await sleep(seconds * 1000);
  state.measuring = false;
  const cpu1 = serverCpu();
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  state.stop = true;
  await within(Promise.all(loops), STEP_TIMEOUT_MS, "the last acks");
  for (const socket of all) socket.disconnect();
  latencies.sort((a, b) => a - b);
  const cpuSec = cpu1 - cpu0;
  const result = {
    event,
    sockets,
    sessions,
    seconds: Number(elapsed.toFixed(3)),
    acks: state.acks,
    acksPerSec: Number((state.acks / elapsed).toFixed(1)),
    p50Ms: Number(percentile(latencies, 50)?.toFixed(3)),
    p99Ms: Number(percentile(latencies, 99)?.toFixed(3)),
    cpuSec: Number(cpuSec.toFixed(2)),
    cpuUsPerAck: state.acks ? Number(((cpuSec * 1e6) / state.acks).toFixed(2)) : null,
    errors: state.errors,
  };
  console.log(JSON.stringify(result));
  if (state.errors) {
    console.error(`sockets.mjs: ${state.errors} bad acks, the first: ${JSON.stringify(state.firstError)}`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(`sockets.mjs: ${err.message}`);
  process.exit(1);
});
