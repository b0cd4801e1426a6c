// A Flowise queue-mode worker as Flowise 3.1 runs it (packages/server/src/commands/worker.ts,
// queue/BaseQueue.ts), with the real bullmq package: one Worker per queue,
// <QUEUE_NAME>-prediction and <QUEUE_NAME>-upsertion, concurrency WORKER_CONCURRENCY
// (Flowise's default: 100000), and on SIGTERM the workers are closed (active jobs finish)
// with a hard exit after 30 s. A job {seconds, fail} sleeps, then succeeds or throws.
// BULLMQ picks the package: bullmq5 (5.45.2, Flowise's pin) or bullmq6.
const { Worker } = await import(process.env.BULLMQ || "bullmq5");

const queueName = process.env.QUEUE_NAME || "flowise-queue";
const url = new URL(process.env.REDIS_URL || "redis://127.0.0.1:6379/0");
const connection = {
  host: url.hostname,
  port: Number(url.port || 6379),
  db: Number((url.pathname || "/0").slice(1) || 0),
  password: process.env.REDIS_PASSWORD || undefined,
  maxRetriesPerRequest: null,
};
const concurrency = Number(process.env.WORKER_CONCURRENCY || 100000);
const prefix = process.env.BULLMQ_PREFIX || "bull";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function processJob(job) {
  console.log(`start ${job.queueName} ${job.id}`);
  await sleep(1000 * Number(job.data.seconds || 0));
  if (job.data.fail) throw new Error("asked to fail");
  console.log(`done ${job.queueName} ${job.id}`);
  return { ok: true };
}

const workers = ["prediction", "upsertion"].map(
  (kind) => new Worker(`${queueName}-${kind}`, processJob, { connection, concurrency, prefix }),
);
for (const worker of workers) await worker.waitUntilReady();
console.log(`ready ${workers.map((w) => w.name).join(",")} concurrency ${concurrency}`);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing workers`);
  setTimeout(() => {
    console.log("not closed after 30 s: exiting");
    process.exit(1);
  }, 30000).unref();
  await Promise.all(workers.map((w) => w.close()));
  console.log("workers closed");
  process.exit(0);
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
