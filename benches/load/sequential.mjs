// benches/load/callgrind's client: one figure, sequential, between callgrind's zero and dump.
//
//   node sequential.mjs --base URL --pid VALGRIND_PID --count 2000 --warmup 200 \
//     (--path /api/read [--cookies 1] | --event session:inc) --dump LABEL
//
// HTTP: Node's fetch on one keep-alive connection, one request after the other (`--cookies 1`:
// with the cookies of one `GET /api/session` done first). Socket: one socket.io socket
// (websocket, the cookies of one login, a same-origin Origin), one emit after the ack of the
// previous. After `--warmup` requests (not measured) it turns callgrind's instrumentation on,
// zeroes the counters, does `--count` requests, dumps (`callgrind_control -d LABEL`) and turns
// the instrumentation off again, so the dump holds those requests and nothing else of ours.
// Prints one JSON line `{ label, count, errors }`. Bounded: a hard exit timer.

import { execFileSync } from "node:child_process";
import { io } from "socket.io-client";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const base = args.base;
const pid = args.pid;
const count = Number(args.count ?? 2000);
const warmup = Number(args.warmup ?? 200);
const label = args.dump;
const TIMEOUT_MS = Number(args["timeout-ms"] ?? 240_000);

setTimeout(() => {
  console.error(`sequential.mjs: timed out (${label})`);
  process.exit(3);
}, TIMEOUT_MS).unref();

function control(...flags) {
  try {
    execFileSync("callgrind_control", [...flags, String(pid)], { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
  } catch (err) {
    throw new Error(`callgrind_control ${flags.join(" ")} ${pid}: ${err.message} ${err.stderr ?? ""}`);
  }
}

async function cookiesOfLogin() {
  const res = await fetch(new URL("/api/session", base));
  await res.text();
  if (res.status !== 200) throw new Error(`GET /api/session answered ${res.status}`);
  return res.headers.getSetCookie().map((l) => l.split(";")[0].trim()).join("; ");
}

async function measured(one) {
  let errors = 0;
  for (let i = 0; i < warmup; i += 1) if (!(await one())) errors += 1;
  control("--instr=on");
  control("-z");
  for (let i = 0; i < count; i += 1) if (!(await one())) errors += 1;
  control(`--dump=${label}`);
  control("--instr=off");
  return errors;
}

async function main() {
  let errors;
  if (args.path) {
    const headers = args.cookies === "1" ? { cookie: await cookiesOfLogin() } : {};
    const url = new URL(args.path, base);
    errors = await measured(async () => {
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      return res.status === 200;
    });
  } else {
    const cookie = await cookiesOfLogin();
    const socket = io(base, {
      transports: ["websocket"],
      upgrade: false,
      forceNew: true,
      reconnection: false,
      timeout: 60_000,
      extraHeaders: { cookie, origin: new URL(base).origin },
    });
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    errors = await measured(async () => {
      const reply = await socket.timeout(60_000).emitWithAck(args.event);
      return reply?.ok === true;
    });
    socket.disconnect();
  }
  console.log(JSON.stringify({ label, count, errors }));
  process.exit(errors ? 1 : 0);
}

main().catch((err) => {
  console.error(`sequential.mjs: ${err.message}`);
  process.exit(1);
});
