// benches/load: the one markdown table of a run, from the JSON lines that `run` collected.
//
//   node report.mjs --results results.jsonl --memory memory.json --runs 3 --seconds 10 ...
//
// Every figure is the median of its runs (throughput, CPU per op and latencies each taken
// apart); the CPU spread column shows the smallest and largest run.

import { readFileSync } from "node:fs";
import { cpus } from "node:os";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];

const results = readFileSync(args.results, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => JSON.parse(line));
const memory = JSON.parse(readFileSync(args.memory, "utf8"));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function figure(key, store = "memory") {
  const runs = results.filter((r) => r.key === key && r.store === store);
  if (runs.length === 0) throw new Error(`no runs for ${key} [${store}]`);
  const cpu = runs.map((r) => r.cpuUs);
  return {
    runs: runs.length,
    seconds: runs[0].seconds,
    rate: median(runs.map((r) => r.rate)),
    cpuUs: median(cpu),
    cpuMin: Math.min(...cpu),
    cpuMax: Math.max(...cpu),
    p50: median(runs.map((r) => r.p50Ms)),
    p99: median(runs.map((r) => r.p99Ms)),
  };
}

const fmt = (x, digits = 1) =>
  x === null || x === undefined || Number.isNaN(x) ? "—" : x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
const int = (x) => Math.round(x).toLocaleString("en-US");
const mib = (kib) => `${fmt(kib / 1024, 1)} MiB`;

const rows = [];
const verdicts = [];

/**
 * A figure row: `ref` is the reference figure (bare) for the efficiency and cost columns;
 * `target` = { eff } (efficiency >= eff, i.e. cost <= 1/eff) or { cost } (cost <= cost).
 */
function row(label, key, store, ref, target, verdictName = label) {
  const f = figure(key, store);
  const r = ref ? figure(...ref) : null;
  const eff = r ? r.cpuUs / f.cpuUs : null;
  const cost = r ? f.cpuUs / r.cpuUs : null;
  let targetText = "";
  let result = "";
  if (target?.eff !== undefined) {
    targetText = `eff ≥ ${target.eff} (cost ≤ ${fmt(1 / target.eff, 3)})`;
    result = eff >= target.eff ? "PASS" : "FAIL";
  } else if (target?.cost !== undefined) {
    targetText = `cost ≤ ${target.cost} (eff ≥ ${fmt(1 / target.cost, 3)})`;
    result = cost <= target.cost ? "PASS" : "FAIL";
  } else if (!ref) {
    result = "reference";
  } else {
    result = "info";
  }
  if (result === "PASS" || result === "FAIL") verdicts.push([verdictName, result]);
  rows.push([
    label,
    fmt(f.rate, 0),
    fmt(f.cpuUs, 2),
    `${fmt(f.cpuMin, 2)}–${fmt(f.cpuMax, 2)}`,
    eff === null ? "1 (ref)" : fmt(eff, 3),
    cost === null ? "1 (ref)" : fmt(cost, 3),
    `${fmt(f.p50, 3)} / ${fmt(f.p99, 3)}`,
    targetText,
    result,
  ]);
  return f;
}

function section(title) {
  rows.push([`**${title}**`, "", "", "", "", "", "", "", ""]);
}

const BARE = ["bare", "memory"];
const BARE_NC = ["bare-nc", "memory"];
const SBARE50 = ["sock-bare-50", "memory"];
const SBARE1 = ["sock-bare-1", "memory"];

section("HTTP, in-memory store, with the cookies of one session (wrk)");
row("`/bare` (outside the session middleware)", ...BARE, null);
row("`/plain` (middleware, session untouched)", "plain", "memory", BARE, { eff: 0.95 }, "`/plain` ≥ 0.95 × `/bare`");
row("`/api/read` (reads the session)", "read", "memory", BARE, { eff: 0.85 }, "`/api/read` ≥ 0.85 × `/bare`");
row("`/api/session` (writes: httpCount += 1, one session, contended)", "session", "memory", BARE, { eff: 0.75 }, "`/api/session` ≥ 0.75 × `/bare`");
section("HTTP, the floor of the session routes: their JSON answer without a session (ratios to `/bare/json`)");
const BARE_JSON = ["bare-json", "memory"];
row("`/bare/json` (outside the middleware: `/api/read`'s JSON from constants)", "bare-json", "memory", BARE);
row("`/api/read` ÷ `/bare/json` (the bridge's own share of a read)", "read", "memory", BARE_JSON);
row("`/api/session` ÷ `/bare/json`", "session", "memory", BARE_JSON);
section("HTTP, the same binary with jemalloc preloaded (`LD_PRELOAD`; ratios to its own `/bare`)");
const JE_BARE = ["bare", "jemalloc"];
row("`/bare`", "bare", "jemalloc", null);
row("`/bare/json`", "bare-json", "jemalloc", JE_BARE);
row("`/plain`", "plain", "jemalloc", JE_BARE);
row("`/api/read`", "read", "jemalloc", JE_BARE);
row("`/api/session` (one session, contended)", "session", "jemalloc", JE_BARE);
section("HTTP, in-memory store, without cookies");
row("`/bare`", ...BARE_NC, null);
row("`/plain` (sets the client cookie)", "plain-nc", "memory", BARE_NC);
row("`/api/read` (no session to read)", "read-nc", "memory", BARE_NC);
row("`/api/session` (a NEW session per request)", "session-nc", "memory", BARE_NC);
section("socket.io, in-memory store, 50 sockets on 50 sessions (closed loop, websocket)");
row("`bare` event (session untouched)", ...SBARE50, null);
row("`session:get`", "sock-get-50", "memory", SBARE50);
row("`session:inc`", "sock-inc-50", "memory", SBARE50, { cost: 1.5 }, "`session:inc` ≤ 1.5 × `bare` (50 sockets)");
section("socket.io, in-memory store, 50 sockets on ONE session (ratios to `bare`, 50 sessions)");
const get1 = row("`session:get`", "sock-get-50one", "memory", SBARE50);
const inc1 = row("`session:inc` (lock contention)", "sock-inc-50one", "memory", SBARE50);
{
  const get50 = figure("sock-get-50");
  const inc50 = figure("sock-inc-50");
  const incRatio = inc1.rate / inc50.rate;
  const getRatio = get1.rate / get50.rate;
  rows.push([
    "`session:inc` acks/s, one session ÷ 50 sessions",
    `${fmt(inc1.rate, 0)} ÷ ${fmt(inc50.rate, 0)}`,
    "",
    "",
    `throughput ratio ${fmt(incRatio, 3)}`,
    "",
    "",
    "ratio ≥ 0.8",
    incRatio >= 0.8 ? "PASS" : "FAIL",
  ]);
  verdicts.push(["50 sockets on one session ≥ 0.8 × the acks/s of 50 sessions", incRatio >= 0.8 ? "PASS" : "FAIL"]);
  rows.push([
    "`session:get` acks/s, one session ÷ 50 sessions",
    `${fmt(get1.rate, 0)} ÷ ${fmt(get50.rate, 0)}`,
    "",
    "",
    `throughput ratio ${fmt(getRatio, 3)}`,
    "",
    "",
    "",
    "info",
  ]);
}
section("socket.io, in-memory store, 1 socket (latency-bound)");
row("`bare` event", ...SBARE1, null);
row("`session:get`", "sock-get-1", "memory", SBARE1);
row("`session:inc`", "sock-inc-1", "memory", SBARE1);
for (const [store, name] of [
  ["file", "FileStore (`SESSION_STORE=file:<tmpdir>`)"],
  ["redis", "Redis, a node of many (`SESSION_STORE=redis://127.0.0.1:6379`: RedisNodes store, mapping, lease, notices)"],
]) {
  section(`${name} (ratios to the in-memory \`bare\` figures)`);
  row("`/api/session` with cookies (one session)", "session", store, BARE);
  row("`session:inc`, 50 sockets on 50 sessions", "sock-inc-50", store, SBARE50);
}

section("memory (RSS = VmRSS of /proc/PID/status)");
const m = memory;
const grownKiB = m.rssFullKiB - m.rssWarmKiB;
const perSession = (grownKiB * 1024) / m.sessions;
rows.push([
  `RSS: fresh server ${mib(m.rssFreshKiB)}; after a 2 s warm-up (${args.connections} connections, one session) ${mib(m.rssWarmKiB)}`,
  "", "", "", "", "", "", "", "info",
]);
const perVerdict = perSession <= 400 ? "PASS" : "FAIL";
verdicts.push(["≤ 400 bytes per session", perVerdict]);
rows.push([
  `${int(m.sessions)} sessions created (\`/api/session\` answered 200, in ${fmt(m.fillSeconds, 1)} s): RSS ${mib(m.rssWarmKiB)} → ${mib(m.rssFullKiB)} = **${int(perSession)} bytes per session** (${int(((m.rssFullKiB - m.rssFreshKiB) * 1024) / m.sessions)} from the fresh RSS)`,
  "", "", "", "", "", "", "≤ 400 bytes/session", perVerdict,
]);
{
  const e = m.expiry;
  const growth = e.rssFullKiB - e.rssFreshKiB;
  const back = e.rssFullKiB - e.rssAfterKiB;
  rows.push([
    `expiry server (\`SESSION_MAX_AGE_MS=60000\`, \`SESSION_CLEANUP_MS=${args["cleanup-ms"]}\`): fresh ${mib(e.rssFreshKiB)}, ${int(m.fillRequested)} sessions ${mib(e.rssFullKiB)} (bridge: ${e.mapped === null ? "?" : int(e.mapped)} mapped sessions); ${e.cleaned ? `cleaned ${e.secondsAfterFill} s after the fill` : `NOT cleaned within ${e.secondsAfterFill} s`} (removed ${int(e.removed)}, ${e.cleaned ? "0" : "some"} mapped left): RSS ${mib(e.rssAfterKiB)} = ${fmt((100 * back) / growth, 0)} % of the growth returned; refilled with ${int(m.fillRequested)} new sessions: RSS ${mib(e.rssRefilledKiB)} (${e.rssRefilledKiB - e.rssFullKiB >= 0 ? "+" : "−"}${mib(Math.abs(e.rssRefilledKiB - e.rssFullKiB))} over the first fill: ${e.rssRefilledKiB - e.rssFullKiB < growth / 4 ? "the freed memory is reused, not leaked" : "it grew again: memory not reused"}); its CPU while the store figures ran: ${e.busyDuringStores}`,
  "", "", "", "", "", "", "", e.cleaned ? "info" : "NOT CLEANED",
]);
}

const header = [
  "figure",
  "req or acks /s",
  "server CPU µs per req/ack",
  `CPU µs, min–max of ${args.runs} runs`,
  "efficiency = bare CPU ÷ this CPU",
  "cost = this CPU ÷ bare CPU",
  "p50 / p99 ms",
  "target",
  "result",
];
const cpu = cpus();
const out = [];
out.push(`# benches/load: last run`);
out.push("");
out.push(
  `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, commit ${args.commit}, ` +
    `${cpu.length} × ${cpu[0]?.model ?? "?"}, ${args.runs} runs per figure (median), ` +
    `${args.seconds} s per run for the figures with a target, ${args.seconds2} s for the others` +
    `${args.quick === "1" ? " (--quick: a smoke test, not a measurement)" : ""}, ` +
    `wrk -t1 -c${args.connections}, whole run ${args.elapsed} s, load average (1, 5, 15 min) ` +
    `${args.loadavg} (2 cores: above ~2 means other work competed with the run).`,
);
out.push("");
out.push(`| ${header.join(" | ")} |`);
out.push(`|${header.map((_, i) => (i === 0 || i >= 7 ? " --- " : " ---: ")).join("|")}|`);
for (const r of rows) out.push(`| ${r.join(" | ")} |`);
out.push("");
const failed = verdicts.filter(([, v]) => v === "FAIL").map(([l]) => l);
out.push(
  `Targets: ${verdicts.length - failed.length} PASS, ${failed.length} FAIL` +
    (failed.length ? ` (${failed.join("; ")}).` : "."),
);
out.push("");
out.push(
  "CPU = utime + stime of the server process (/proc/PID/stat) over the run ÷ requests (wrk) or acks " +
    "(benches/load/sockets.mjs); efficiency = the reference's CPU per op ÷ this figure's (the target's " +
    "\"≥ 0.95 × bare\"); cost = its inverse. HTTP p50/p99 are wrk's, socket ones the client's " +
    "(emit to ack). The load client shares the 2 cores with the server, so throughput is bounded by it; " +
    "CPU per op is the figure to compare.",
);
console.log(out.join("\n"));
