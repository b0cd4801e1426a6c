// Adds jobs as Flowise's BaseQueue.addJob does (removeOnFail: true; completed jobs kept up to
// REMOVE_ON_COUNT), through the real bullmq Queue. Arguments: a JSON object
//   {"queue": "flowise-queue-prediction", "jobs": [{"seconds": 2, "fail": false,
//    "priority": 0, "delay": 0}], "pause": false}
// Prints the job ids as JSON.
const { Queue } = await import(process.env.BULLMQ || "bullmq5");

const order = JSON.parse(process.argv[2]);
const url = new URL(process.env.REDIS_URL || "redis://127.0.0.1:6379/0");
const connection = {
  host: url.hostname,
  port: Number(url.port || 6379),
  db: Number((url.pathname || "/0").slice(1) || 0),
  password: process.env.REDIS_PASSWORD || undefined,
};
const prefix = process.env.BULLMQ_PREFIX || "bull";
const maxLen = Number(process.env.QUEUE_REDIS_EVENT_STREAM_MAX_LEN || 10000);
const queue = new Queue(order.queue, { connection, prefix, streams: { events: { maxLen } } });
if (order.pause) await queue.pause();
const ids = [];
for (const job of order.jobs) {
  const options = { removeOnFail: true, removeOnComplete: { count: 10000 } };
  if (job.priority) options.priority = job.priority;
  if (job.delay) options.delay = job.delay;
  const added = await queue.add("flowise", { seconds: job.seconds || 0, fail: !!job.fail }, options);
  ids.push(added.id);
}
console.log(JSON.stringify(ids));
await queue.close();
