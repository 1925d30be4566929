// sqs-producer and sqs-consumer (BBC), unmodified, against a running loosely server.
// Usage: LOOSELY_ENDPOINT=http://127.0.0.1:PORT node consumers_check.mjs
// The libraries build their own SQS clients, which send each request to the host in the queue URL
// (useQueueUrlAsEndpoint), so the URLs the server hands out must reach it. A plain @aws-sdk/client-sqs
// client sets queues up and looks at them from outside. Every wait polls with a deadline.
// Prints one JSON line {"ok": true, "checks": [...]} and exits 0, or prints the failure and exits 1.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { Consumer } from "sqs-consumer";
import { Producer } from "sqs-producer";

const endpoint = process.env.LOOSELY_ENDPOINT;
if (!endpoint) {
  console.error("LOOSELY_ENDPOINT is not set");
  process.exit(2);
}
// The consumers' own clients take credentials from the environment: test ones, never real ones.
process.env.AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE";
process.env.AWS_SECRET_ACCESS_KEY = "secret";
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;
// Where clients built by the libraries resolve their endpoint; they still send each request to the
// host in its queue URL (useQueueUrlAsEndpoint, their default), which the server must make reachable.
process.env.AWS_ENDPOINT_URL_SQS = endpoint;
const region = "us-east-1";
const credentials = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "secret" };
const admin = new SQSClient({ endpoint, region, credentials, maxAttempts: 1 });
const suffix = Math.random().toString(36).slice(2, 10);
const checks = [];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// ---- helpers ----

const md5 = (data) => createHash("md5").update(data).digest("hex");

/** MD5OfMessageAttributes as AWS computes it: names sorted, each field length-prefixed. */
function md5OfAttributes(attributes) {
  const field = (bytes) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, Buffer.from(bytes)]);
  };
  const parts = [];
  for (const name of Object.keys(attributes).sort()) {
    const { DataType, StringValue, BinaryValue } = attributes[name];
    parts.push(field(Buffer.from(name)), field(Buffer.from(DataType)));
    if (BinaryValue !== undefined) parts.push(Buffer.from([2]), field(BinaryValue));
    else parts.push(Buffer.from([1]), field(Buffer.from(StringValue)));
  }
  return md5(Buffer.concat(parts));
}

async function waitFor(what, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

async function createQueue(name, Attributes = {}) {
  const { QueueUrl } = await admin.send(new CreateQueueCommand({ QueueName: `${name}-${suffix}`, Attributes }));
  return QueueUrl;
}

async function createFifoQueue(name, Attributes = {}) {
  const { QueueUrl } = await admin.send(
    new CreateQueueCommand({ QueueName: `${name}-${suffix}.fifo`, Attributes: { FifoQueue: "true", ...Attributes } }),
  );
  return QueueUrl;
}

async function queueAttributes(QueueUrl, names = ["All"]) {
  const { Attributes } = await admin.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: names }));
  return Attributes;
}

async function assertEmpty(QueueUrl) {
  const a = await queueAttributes(QueueUrl);
  assert.equal(a.ApproximateNumberOfMessages, "0", `${QueueUrl} still has visible messages`);
  assert.equal(a.ApproximateNumberOfMessagesNotVisible, "0", `${QueueUrl} still has messages in flight`);
  assert.equal(a.ApproximateNumberOfMessagesDelayed, "0", `${QueueUrl} still has delayed messages`);
}

/** Receive (and delete) until `count` messages arrived or the deadline passed; extra ones fail. */
async function drain(QueueUrl, count, timeoutMs, extra = {}) {
  const got = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < count && Date.now() < deadline) {
    const { Messages = [] } = await admin.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, ...extra }),
    );
    for (const m of Messages) {
      got.push(m);
      await admin.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  assert.equal(got.length, count, `expected ${count} messages from ${QueueUrl}, got ${got.length}`);
  return got;
}

/** A consumer of the library with its own client; records errors and stops through `finish`. */
function consumer(options) {
  const c = Consumer.create({ region, waitTimeSeconds: 1, suppressFifoWarning: true, ...options });
  c.errors = [];
  c.stopping = false;
  for (const event of ["error", "processing_error", "timeout_error"]) {
    c.on(event, (err) => {
      if (!c.stopping) c.errors.push(`${event}: ${err?.message}`);
    });
  }
  return c;
}

/** Stop with abort and wait for the stopped event; fail on errors other than the expected ones. */
async function finish(c, expectedErrors = () => false) {
  let stopped = false;
  c.once("stopped", () => {
    stopped = true;
  });
  c.stopping = true;
  c.stop({ abort: true });
  await waitFor("the consumer's stopped event", () => stopped, 5000);
  assert.equal(c.status.isRunning, false);
  const unexpected = c.errors.filter((e) => !expectedErrors(e));
  assert.deepEqual(unexpected, [], "unexpected consumer errors");
}

const byBody = (a, b) => (a.Body < b.Body ? -1 : a.Body > b.Body ? 1 : 0);

// ---- sqs-producer ----

async function producerSingle() {
  const queueUrl = await createQueue("prod-single");
  const producer = Producer.create({ queueUrl, region, credentials });
  const one = await producer.send("hello-from-producer");
  const two = await producer.send({ id: "object-1", body: "object body ✓" });
  assert.equal(one.length, 1);
  assert.equal(two.length, 1);
  assert.equal(one[0].Id, "hello-from-producer");
  assert.equal(two[0].Id, "object-1");
  assert.match(one[0].MessageId, UUID);
  assert.match(two[0].MessageId, UUID);
  assert.equal(one[0].MD5OfMessageBody, md5("hello-from-producer"));
  assert.equal(two[0].MD5OfMessageBody, md5("object body ✓"));
  // A string message is its own batch entry id, so one with a space is refused, as AWS refuses it.
  await assert.rejects(producer.send("two words"), (err) => err.name === "InvalidBatchEntryId");
  assert.equal(await producer.queueSize(), 2);
  const got = (await drain(queueUrl, 2, 5000)).sort(byBody);
  assert.deepEqual(
    got.map((m) => [m.Body, m.MessageId]),
    [
      ["hello-from-producer", one[0].MessageId],
      ["object body ✓", two[0].MessageId],
    ],
  );
  checks.push("producer-single");
}

async function producerBatch() {
  const queueUrl = await createQueue("prod-batch");
  const producer = Producer.create({ queueUrl, region, credentials });
  const sizes = [];
  producer.sqs.middlewareStack.add(
    (next) => async (args) => {
      if (args.input.Entries) sizes.push(args.input.Entries.length);
      return next(args);
    },
    { step: "initialize", name: "countBatches" },
  );
  const messages = Array.from({ length: 23 }, (_, i) => ({ id: `m${i}`, body: `batch message ${i}` }));
  const sent = await producer.send(messages);
  assert.deepEqual(sizes, [10, 10, 3]);
  assert.deepEqual(
    sent.map((r) => r.Id),
    messages.map((m) => m.id),
  );
  for (const [i, r] of sent.entries()) {
    assert.match(r.MessageId, UUID);
    assert.equal(r.MD5OfMessageBody, md5(`batch message ${i}`));
  }
  assert.equal(new Set(sent.map((r) => r.MessageId)).size, 23);
  // One entry the server refuses (a character SQS does not allow) fails alone; the rest are sent.
  const mixed = [
    { id: "good-1", body: "fine" },
    { id: "bad", body: "nul \u0000 here" },
    { id: "good-2", body: "also fine" },
  ];
  await assert.rejects(producer.send(mixed), (err) => {
    assert.deepEqual(err.failedMessages, ["bad"]);
    return true;
  });
  const got = await drain(queueUrl, 25, 8000);
  const ids = new Map(got.map((m) => [m.MessageId, m.Body]));
  for (const [i, r] of sent.entries()) assert.equal(ids.get(r.MessageId), `batch message ${i}`);
  assert.deepEqual(
    got
      .map((m) => m.Body)
      .filter((b) => !b.startsWith("batch message"))
      .sort(),
    ["also fine", "fine"],
  );
  checks.push("producer-batch");
}

async function producerAttributes() {
  const queueUrl = await createQueue("prod-attrs");
  const producer = Producer.create({ queueUrl, region, credentials });
  const messageAttributes = {
    colour: { DataType: "String", StringValue: "blue" },
    count: { DataType: "Number", StringValue: "42" },
    blob: { DataType: "Binary", BinaryValue: Uint8Array.from([0, 1, 2, 254, 255]) },
    "custom.kind": { DataType: "String.custom", StringValue: "x ✓" },
  };
  const [result] = await producer.send({ id: "with-attrs", body: "has attributes", messageAttributes });
  assert.equal(result.MD5OfMessageAttributes, md5OfAttributes(messageAttributes));
  const [m] = await drain(queueUrl, 1, 5000, { MessageAttributeNames: ["All"] });
  assert.equal(m.MessageId, result.MessageId);
  assert.equal(m.MD5OfMessageAttributes, result.MD5OfMessageAttributes);
  assert.deepEqual(Object.keys(m.MessageAttributes).sort(), Object.keys(messageAttributes).sort());
  assert.equal(m.MessageAttributes.colour.StringValue, "blue");
  assert.equal(m.MessageAttributes.count.DataType, "Number");
  assert.equal(m.MessageAttributes.count.StringValue, "42");
  assert.deepEqual([...m.MessageAttributes.blob.BinaryValue], [0, 1, 2, 254, 255]);
  assert.equal(m.MessageAttributes["custom.kind"].DataType, "String.custom");
  assert.equal(m.MessageAttributes["custom.kind"].StringValue, "x ✓");
  checks.push("producer-attributes");
}

async function producerDelay() {
  const queueUrl = await createQueue("prod-delay");
  const producer = Producer.create({ queueUrl, region, credentials });
  const sentAt = Date.now();
  const [result] = await producer.send({ id: "later", body: "delayed", delaySeconds: 2 });
  const now = await admin.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0 }));
  assert.equal(now.Messages, undefined, "a delayed message was delivered at once");
  assert.equal((await queueAttributes(queueUrl)).ApproximateNumberOfMessagesDelayed, "1");
  const [m] = await drain(queueUrl, 1, 6000);
  const waited = Date.now() - sentAt;
  assert.equal(m.MessageId, result.MessageId);
  assert.ok(waited >= 1800, `delivered after ${waited} ms, before the 2 s delay`);
  checks.push("producer-delay");
}

async function producerFifo() {
  const queueUrl = await createFifoQueue("prod-fifo");
  const producer = Producer.create({ queueUrl, region, credentials });
  const messages = [
    ["a1", "A"],
    ["b1", "B"],
    ["a2", "A"],
    ["b2", "B"],
    ["a3", "A"],
  ].map(([id, groupId]) => ({ id, body: `body ${id}`, groupId, deduplicationId: `dedup-${id}` }));
  const sent = await producer.send(messages);
  assert.deepEqual(
    sent.map((r) => r.Id),
    ["a1", "b1", "a2", "b2", "a3"],
  );
  const sequence = sent.map((r) => BigInt(r.SequenceNumber));
  for (let i = 1; i < sequence.length; i++) assert.ok(sequence[i] > sequence[i - 1], "SequenceNumber not increasing");
  // The same deduplication id within five minutes is accepted but not delivered again.
  const [dup] = await producer.send({ id: "again", body: "other body", groupId: "A", deduplicationId: "dedup-a1" });
  assert.match(dup.MessageId, UUID);
  const got = await drain(queueUrl, 5, 6000, { MessageSystemAttributeNames: ["MessageGroupId", "SequenceNumber"] });
  const order = (group) => got.filter((m) => m.Attributes.MessageGroupId === group).map((m) => m.Body);
  assert.deepEqual(order("A"), ["body a1", "body a2", "body a3"]);
  assert.deepEqual(order("B"), ["body b1", "body b2"]);
  const ids = new Map(sent.map((r) => [r.MessageId, r.SequenceNumber]));
  for (const m of got) assert.equal(m.Attributes.SequenceNumber, ids.get(m.MessageId));
  const late = await admin.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1 }));
  assert.equal(late.Messages, undefined, "a duplicate was delivered");
  checks.push("producer-fifo");
}

// ---- sqs-consumer ----

async function sendBodies(QueueUrl, bodies) {
  for (let i = 0; i < bodies.length; i += 10) {
    const Entries = bodies.slice(i, i + 10).map((MessageBody, j) => ({ Id: `e${i + j}`, MessageBody }));
    const { Failed = [] } = await admin.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
    assert.deepEqual(Failed, []);
  }
}

async function consumerHandleMessage() {
  const queueUrl = await createQueue("cons-single");
  const bodies = Array.from({ length: 6 }, (_, i) => `single ${i}`);
  await sendBodies(queueUrl, bodies);
  const seen = [];
  const processed = [];
  const c = consumer({
    queueUrl,
    batchSize: 4,
    handleMessage: async (message) => {
      seen.push(message.Body);
      return message;
    },
  });
  c.on("message_processed", (m) => processed.push(m.MessageId));
  c.start();
  await waitFor("six processed messages", () => processed.length >= 6, 8000);
  await finish(c);
  assert.deepEqual([...seen].sort(), bodies);
  assert.equal(new Set(processed).size, 6);
  await assertEmpty(queueUrl);
  checks.push("consumer-handle-message");
}

async function consumerHandleMessageBatch() {
  // Each message's first sight acks only every other message; the rest come back after the
  // one-second visibility timeout the consumer asks for, and are acked then.
  const queueUrl = await createQueue("cons-batch");
  const bodies = Array.from({ length: 10 }, (_, i) => `batch ${i}`);
  await sendBodies(queueUrl, bodies);
  const batchSizes = [];
  const sightings = new Map();
  const processed = [];
  const c = consumer({
    queueUrl,
    batchSize: 10,
    visibilityTimeout: 1,
    attributeNames: ["ApproximateReceiveCount"],
    handleMessageBatch: async (messages) => {
      batchSizes.push(messages.length);
      const acked = [];
      for (const m of messages) {
        const count = (sightings.get(m.Body) ?? 0) + 1;
        sightings.set(m.Body, count);
        assert.equal(m.Attributes.ApproximateReceiveCount, String(count));
        if (count > 1 || Number(m.Body.split(" ")[1]) % 2 === 0) acked.push(m);
      }
      return acked;
    },
  });
  c.on("message_processed", (m) => processed.push(m.Body));
  c.start();
  await waitFor("ten processed messages", () => processed.length >= 10, 10000);
  await finish(c);
  assert.ok(Math.max(...batchSizes) > 1, `no batch held more than one message: ${batchSizes}`);
  assert.deepEqual([...processed].sort(), bodies);
  for (const [body, count] of sightings) {
    const expected = Number(body.split(" ")[1]) % 2 === 0 ? 1 : 2;
    assert.equal(count, expected, `${body} was handled ${count} times`);
  }
  await assertEmpty(queueUrl);
  checks.push("consumer-handle-message-batch");
}

async function consumerVisibilityTimeout() {
  const queueUrl = await createQueue("cons-visibility");
  await sendBodies(queueUrl, ["fails once"]);
  const deliveries = [];
  const processingErrors = [];
  const c = consumer({
    queueUrl,
    visibilityTimeout: 2,
    attributeNames: ["ApproximateReceiveCount"],
    handleMessage: async (message) => {
      deliveries.push({ at: Date.now(), count: message.Attributes.ApproximateReceiveCount });
      if (deliveries.length === 1) throw new Error("first attempt fails");
      return message;
    },
  });
  c.on("processing_error", (err) => processingErrors.push(err.message));
  c.on("message_processed", () => deliveries.push({ processed: true }));
  c.start();
  await waitFor("the message's second delivery and delete", () => deliveries.at(-1)?.processed === true, 8000);
  await finish(c, (e) => e.includes("first attempt fails"));
  assert.equal(deliveries.length, 3);
  const gap = deliveries[1].at - deliveries[0].at;
  // At least the timeout, less what the first answer took to arrive (generous for a loaded machine).
  assert.ok(gap >= 1500, `redelivered after ${gap} ms, before the 2 s visibility timeout ran out`);
  assert.deepEqual(
    deliveries.slice(0, 2).map((d) => d.count),
    ["1", "2"],
  );
  assert.equal(processingErrors.length, 1);
  await assertEmpty(queueUrl);
  checks.push("consumer-visibility-timeout");
}

async function terminateRun(mode) {
  // The queue's visibility timeout is 30 s: a redelivery within seconds is the consumer's
  // ChangeMessageVisibility (or ChangeMessageVisibilityBatch) to 0 after the handler threw.
  const queueUrl = await createQueue(`cons-terminate-${mode}`, { VisibilityTimeout: "30" });
  const bodies = mode === "single" ? ["comes back at once"] : ["back 1", "back 2", "back 3"];
  await sendBodies(queueUrl, bodies);
  const seen = new Map();
  const processed = [];
  let failed = false;
  const see = (m) => seen.set(m.Body, (seen.get(m.Body) ?? 0) + 1);
  const fail = () => {
    failed = true;
    throw new Error("first attempt fails");
  };
  const c = consumer({
    queueUrl,
    batchSize: 10,
    terminateVisibilityTimeout: true,
    ...(mode === "single"
      ? { handleMessage: async (m) => (see(m), failed ? m : fail()) }
      : { handleMessageBatch: async (ms) => (ms.forEach(see), failed ? ms : fail()) }),
  });
  c.on("message_processed", (m) => processed.push(m.Body));
  c.start();
  await waitFor(`immediate redelivery (${mode})`, () => processed.length >= bodies.length, 5000);
  await finish(c, (e) => e.includes("first attempt fails"));
  assert.deepEqual([...processed].sort(), bodies);
  // Whatever the failed receive held was handled twice, the rest once.
  const counts = [...seen.values()];
  assert.ok(counts.includes(2) && counts.every((n) => n === 1 || n === 2), `handled: ${[...seen]}`);
  await assertEmpty(queueUrl);
}

async function consumerTerminateVisibility() {
  await Promise.all([terminateRun("single"), terminateRun("batch")]);
  checks.push("consumer-terminate-visibility");
}

async function consumerDeadLetter() {
  const dlqUrl = await createQueue("cons-dlq");
  const { QueueArn: dlqArn } = await queueAttributes(dlqUrl, ["QueueArn"]);
  const queueUrl = await createQueue("cons-redrive", {
    VisibilityTimeout: "30",
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }),
  });
  const { QueueArn: sourceArn } = await queueAttributes(queueUrl, ["QueueArn"]);
  await sendBodies(queueUrl, ["always fails"]);
  const counts = [];
  const c = consumer({
    queueUrl,
    terminateVisibilityTimeout: true,
    attributeNames: ["ApproximateReceiveCount"],
    handleMessage: async (message) => {
      counts.push(message.Attributes.ApproximateReceiveCount);
      throw new Error("always fails");
    },
  });
  c.start();
  let dead;
  try {
    [dead] = await drain(dlqUrl, 1, 8000, { MessageSystemAttributeNames: ["All"] });
  } finally {
    await finish(c, (e) => e.includes("always fails"));
  }
  assert.equal(dead.Body, "always fails");
  assert.equal(dead.Attributes.DeadLetterQueueSourceArn, sourceArn);
  assert.deepEqual(counts, ["1", "2"]);
  await assertEmpty(queueUrl);
  checks.push("consumer-dead-letter");
}

async function heartbeatRun(mode) {
  // The handler takes 4.5 s against a 3 s visibility timeout; the heartbeat every second keeps the
  // message invisible, so a receiver watching the queue meanwhile must get nothing. (Half a second
  // away from a heartbeat: one that fires as the message is deleted fails, on AWS as here.)
  const queueUrl = await createQueue(`cons-heartbeat-${mode}`);
  await sendBodies(queueUrl, [`slow ${mode}`]);
  const changes = [];
  let calls = 0;
  let done = false;
  const slow = async () => {
    calls += 1;
    await sleep(4500);
  };
  const c = consumer({
    queueUrl,
    visibilityTimeout: 3,
    heartbeatInterval: 1,
    ...(mode === "single"
      ? { handleMessage: async (m) => (await slow(), m) }
      : { handleMessageBatch: async (ms) => (await slow(), ms) }),
  });
  c.sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName.startsWith("ChangeMessageVisibility")) changes.push(context.commandName);
      return next(args);
    },
    { step: "initialize", name: "countVisibilityChanges" },
  );
  c.on("message_processed", () => {
    done = true;
  });
  c.start();
  await waitFor("the slow handler to start", () => calls === 1, 5000);
  const stolen = [];
  while (!done) {
    const { Messages = [] } = await admin.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, VisibilityTimeout: 30 }),
    );
    stolen.push(...Messages.map((m) => m.Body));
    if (stolen.length) break;
  }
  await waitFor("the slow message to be processed", () => done, 5000).catch((err) => {
    throw new Error(`${err.message}; watcher received ${JSON.stringify(stolen)}`);
  });
  await finish(c);
  assert.deepEqual(stolen, [], "the message was delivered again while its handler ran");
  assert.equal(calls, 1);
  const command = mode === "single" ? "ChangeMessageVisibilityCommand" : "ChangeMessageVisibilityBatchCommand";
  assert.ok(changes.length >= 3 && changes.every((k) => k === command), `heartbeats: ${changes}`);
  await assertEmpty(queueUrl);
}

async function consumerHeartbeat() {
  await Promise.all([heartbeatRun("single"), heartbeatRun("batch")]);
  checks.push("consumer-heartbeat");
}

async function consumerAttributes() {
  const queueUrl = await createQueue("cons-attrs");
  await admin.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: "attributes",
      MessageAttributes: {
        wanted: { DataType: "String", StringValue: "yes" },
        other: { DataType: "Number", StringValue: "7" },
        bytes: { DataType: "Binary", BinaryValue: Uint8Array.from([9, 8, 7]) },
      },
    }),
  );
  let received;
  let processed = false;
  const c = consumer({
    queueUrl,
    messageAttributeNames: ["wanted", "bytes"],
    attributeNames: ["ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp"],
    handleMessage: async (message) => {
      received = message;
      return message;
    },
  });
  c.on("message_processed", () => {
    processed = true;
  });
  c.start();
  await waitFor("the message with attributes", () => processed, 5000);
  await finish(c);
  assert.deepEqual(Object.keys(received.MessageAttributes).sort(), ["bytes", "wanted"]);
  assert.equal(received.MessageAttributes.wanted.StringValue, "yes");
  assert.deepEqual([...received.MessageAttributes.bytes.BinaryValue], [9, 8, 7]);
  assert.deepEqual(Object.keys(received.Attributes).sort(), [
    "ApproximateFirstReceiveTimestamp",
    "ApproximateReceiveCount",
    "SentTimestamp",
  ]);
  assert.equal(received.Attributes.ApproximateReceiveCount, "1");
  assert.ok(Math.abs(Number(received.Attributes.SentTimestamp) - Date.now()) < 60000);
  checks.push("consumer-attributes");
}

async function consumerFifoOrder() {
  // Three groups, sent interleaved. First handleMessage mode; then handleMessageBatch mode whose
  // first batch fails and is handed back at once: each group must still come out in order.
  const fifoQueue = async (name) => {
    const queueUrl = await createFifoQueue(name, { ContentBasedDeduplication: "true" });
    for (let i = 1; i <= 4; i++) {
      for (const group of ["A", "B", "C"]) {
        const sent = new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: `${group}${i}`, MessageGroupId: group });
        await admin.send(sent);
      }
    }
    return queueUrl;
  };
  const inOrder = (bodies) => {
    for (const group of ["A", "B", "C"]) {
      const expected = [1, 2, 3, 4].map((i) => `${group}${i}`);
      assert.deepEqual(
        bodies.filter((b) => b.startsWith(group)),
        expected,
      );
    }
  };

  const singleUrl = await fifoQueue("cons-fifo");
  const handled = [];
  const processed = [];
  const single = consumer({
    queueUrl: singleUrl,
    batchSize: 5,
    handleMessage: async (message) => {
      handled.push(message.Body);
      return message;
    },
  });
  single.on("message_processed", (m) => processed.push(m.Body));
  single.start();
  await waitFor("twelve FIFO messages processed", () => processed.length >= 12, 8000);
  await finish(single);
  inOrder(handled);
  assert.equal(handled.length, 12);
  await assertEmpty(singleUrl);

  const batchUrl = await fifoQueue("cons-fifo-batch");
  const batches = [];
  const acked = [];
  const batch = consumer({
    queueUrl: batchUrl,
    batchSize: 10,
    terminateVisibilityTimeout: true,
    handleMessageBatch: async (messages) => {
      batches.push(messages.map((m) => m.Body));
      if (batches.length === 1) throw new Error("first batch fails");
      return messages;
    },
  });
  batch.on("message_processed", (m) => acked.push(m.Body));
  batch.start();
  await waitFor("twelve FIFO messages acked", () => acked.length >= 12, 8000);
  await finish(batch, (e) => e.includes("first batch fails"));
  inOrder(acked);
  assert.equal(acked.length, 12);
  // The failed batch began each of its groups at the group's first message, and so did the next.
  for (const group of ["A", "B", "C"]) {
    for (const b of batches.slice(0, 2)) {
      const ofGroup = b.filter((body) => body.startsWith(group));
      if (ofGroup.length) assert.equal(ofGroup[0], `${group}1`, `batches: ${JSON.stringify(batches)}`);
    }
  }
  await assertEmpty(batchUrl);
  checks.push("consumer-fifo-order");
}

async function consumerMissingQueue() {
  // A consumer of a queue that does not exist reports the SDK's typed error through its error
  // event; the library treats that code as a connection error and waits authenticationErrorTimeout.
  const queueUrl = `${endpoint}/000000000000/missing-${suffix}`;
  const errors = [];
  const c = consumer({
    queueUrl,
    authenticationErrorTimeout: 300,
    handleMessage: async (message) => message,
  });
  c.on("error", (err) => {
    if (!c.stopping) errors.push({ at: Date.now(), err });
  });
  c.start();
  await waitFor("two receive errors", () => errors.length >= 2, 5000);
  await finish(c, (e) => e.includes("SQS receive message failed"));
  const [{ err }] = errors;
  assert.equal(err.name, "SQSError");
  assert.equal(err.code, "QueueDoesNotExist");
  assert.equal(err.statusCode, 400);
  assert.equal(err.fault, "client");
  assert.equal(err.queueUrl, queueUrl);
  assert.equal(err.cause.Code, "AWS.SimpleQueueService.NonExistentQueue");
  const pause = errors[1].at - errors[0].at;
  assert.ok(pause >= 250, `polled again after ${pause} ms, not after authenticationErrorTimeout`);
  checks.push("consumer-missing-queue");
}

async function consumerStop() {
  // A consumer with the default 20 s long poll is stopped with abort while its receive waits; a
  // message sent afterwards must stay in the queue for others.
  const queueUrl = await createQueue("cons-stop");
  let receives = 0;
  let handled = 0;
  const events = [];
  const c = consumer({
    queueUrl,
    waitTimeSeconds: 20,
    preReceiveMessageCallback: async () => {
      receives += 1;
    },
    handleMessage: async (message) => {
      handled += 1;
      return message;
    },
  });
  c.on("aborted", () => events.push("aborted"));
  c.on("stopped", () => events.push("stopped"));
  c.start();
  await waitFor("the long poll to start", () => receives === 1 && c.status.isPolling, 5000);
  const stoppedAt = Date.now();
  await finish(c, (e) => /abort/i.test(e));
  assert.ok(Date.now() - stoppedAt < 2000, "stop took longer than 2 s");
  assert.deepEqual(events, ["aborted", "stopped"]);
  await waitFor("the aborted receive to settle", () => !c.status.isPolling, 3000);
  await sendBodies(queueUrl, ["after stop"]);
  const [m] = await drain(queueUrl, 1, 5000);
  assert.equal(m.Body, "after stop");
  assert.equal(receives, 1, "the consumer polled again after it was stopped");
  assert.equal(handled, 0);
  checks.push("consumer-stop");
}

const started = Date.now();
try {
  await producerSingle();
  await producerBatch();
  await producerAttributes();
  await producerDelay();
  await producerFifo();
  await consumerHandleMessage();
  await consumerHandleMessageBatch();
  await consumerVisibilityTimeout();
  await consumerTerminateVisibility();
  await consumerDeadLetter();
  await consumerHeartbeat();
  await consumerAttributes();
  await consumerFifoOrder();
  await consumerMissingQueue();
  await consumerStop();
} catch (err) {
  console.error(`after ${JSON.stringify(checks)}: ${err?.stack ?? String(err)}`);
  process.exit(1);
}
admin.destroy();
console.log(JSON.stringify({ ok: true, checks, seconds: (Date.now() - started) / 1000 }));
// Every consumer was stopped and every client is done: nothing may keep the process alive now.
setTimeout(() => {
  console.error("the process is still running 5 s after the checks: something was not stopped");
  process.exit(1);
}, 5000).unref();
