// BullMQ (Node.js) side of the queue benchmark; same roles and report files as bench/queues/proc.py.
//   node bench.mjs enqueue --url redis://... --queue q --n 2000 [--bulk] [--kind noop|sleep] [--warmup W]
//   node bench.mjs latency --url ... --queue q --n 200 --gap 0.005
//   node bench.mjs worker  --url ... --queue q --concurrency 10
import { Queue, Worker } from "bullmq";
import { writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";

const [role, ...rest] = process.argv.slice(2);
const args = { n: 0, kind: "noop", gap: 0.005, concurrency: 10, bulk: false, warmup: 0 };
for (let i = 0; i < rest.length; i++) {
  const key = rest[i].replace(/^--/, "");
  if (key === "bulk") args.bulk = true;
  else args[key] = rest[++i];
}
const jobOpts = { removeOnComplete: { count: 1000 } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Sub-millisecond wall clock in seconds, comparable with Python time.time().
const wallSeconds = () => (performance.timeOrigin + performance.now()) / 1000;

function connectionFromUrl(url) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), db: Number(u.pathname.slice(1) || 0) };
}

async function add(queue, n, kind) {
  if (args.bulk) {
    for (let s = 0; s < n; s += 1000) {
      const chunk = [];
      for (let i = s; i < Math.min(n, s + 1000); i++) chunk.push({ name: "bench_job", data: { k: kind, i }, opts: jobOpts });
      await queue.addBulk(chunk);
    }
  } else {
    for (let i = 0; i < n; i++) await queue.add("bench_job", { k: kind, i }, jobOpts);
  }
}

async function enqueue() {
  const queue = new Queue(args.queue, { connection: connectionFromUrl(args.url) });
  await queue.waitUntilReady();
  // Warm-up jobs first, untimed, by the same API: the JIT has compiled the path when timing starts.
  await add(queue, Number(args.warmup), "warm");
  const start = performance.now();
  await add(queue, Number(args.n), args.kind);
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ seconds }));
  await queue.close();
}

async function latency() {
  const queue = new Queue(args.queue, { connection: connectionFromUrl(args.url) });
  await queue.waitUntilReady();
  for (let i = 0; i < Number(args.n); i++) {
    await sleep(Number(args.gap) * 1000);
    await queue.add("bench_job", { k: "lat", t: wallSeconds() }, jobOpts);
  }
  console.log(JSON.stringify({ seconds: 0 }));
  await queue.close();
}

function worker() {
  // A worker outlives nothing: if the harness dies, the worker goes too.
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500);
  const state = { count: 0, warm: 0, first_start: null, last_end: null, latencies: [] };
  const path = join(process.env.BENCH_REPORT_DIR, `${process.pid}.json`);
  let written = -1;
  setInterval(() => {
    if (state.count + state.warm === written) return;
    writeFileSync(path + ".tmp", JSON.stringify(state));
    renameSync(path + ".tmp", path);
    written = state.count + state.warm;
  }, 50);
  new Worker(
    args.queue,
    async (job) => {
      if (job.data.k === "warm") { state.warm += 1; return; }
      const now = wallSeconds();
      if (state.first_start === null) state.first_start = now;
      if (job.data.k === "lat") state.latencies.push(now - job.data.t);
      if (job.data.k === "sleep") await sleep(10);
      state.count += 1;
      state.last_end = wallSeconds();
    },
    { connection: connectionFromUrl(args.url), concurrency: Number(args.concurrency) },
  );
}

if (role === "enqueue") await enqueue();
else if (role === "latency") await latency();
else if (role === "worker") worker();
else { console.error(`unknown role ${role}`); process.exit(2); }
