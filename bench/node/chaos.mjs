// BullMQ (Node.js) under the chaos suite's kill loop (bench/chaos/peers.py, run 4).
//   node chaos.mjs enqueue --url redis://... --queue q --plan payloads.json
//   node chaos.mjs worker  --url redis://... --queue q --concurrency 8
// The worker keeps BullMQ's defaults for crash recovery (lock 30 s, stalled check every 30 s,
// a job stalled more than once fails) and tallies each run in the format of
// bench/chaos/handlers.py: "S|E <job> <token> <worker> <unix time>", one O_APPEND write per
// line to $CHAOS_TALLY_DIR/<worker>-<pid>.tally, so the lines survive a SIGKILL.
import { Queue, Worker } from "bullmq";
import { appendFileSync, readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { join } from "node:path";

const [role, ...rest] = process.argv.slice(2);
const args = { concurrency: 8 };
for (let i = 0; i < rest.length; i += 2) args[rest[i].replace(/^--/, "")] = rest[i + 1];

function connectionFromUrl(url) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), db: Number(u.pathname.slice(1) || 0) };
}

async function enqueue() {
  const payloads = JSON.parse(readFileSync(args.plan, "utf8"));
  const queue = new Queue(args.queue, { connection: connectionFromUrl(args.url) });
  for (let s = 0; s < payloads.length; s += 500) {
    const chunk = payloads.slice(s, s + 500).map((data) => ({ name: "chaos_job", data }));
    await queue.addBulk(chunk);
  }
  await queue.close();
}

function worker() {
  // If the harness dies, the worker goes too.
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500);
  const name = process.env.CHAOS_WORKER_NAME;
  const path = join(process.env.CHAOS_TALLY_DIR, `${name}-${process.pid}.tally`);
  const tally = (mark, job, token) =>
    appendFileSync(path, `${mark} ${job} ${token} ${name} ${(Date.now() / 1000).toFixed(3)}\n`);
  new Worker(
    args.queue,
    async (job) => {
      const token = randomUUID().slice(0, 12); // one per delivery, as in peer_workers.py
      tally("S", String(job.data.i), token);
      await new Promise((r) => setTimeout(r, job.data.ms));
      tally("E", String(job.data.i), token);
    },
    { connection: connectionFromUrl(args.url), concurrency: Number(args.concurrency) },
  );
}

if (role === "enqueue") await enqueue();
else if (role === "worker") worker();
else { console.error(`unknown role ${role}`); process.exit(2); }
