// The AWS SDK for JavaScript v2 (npm aws-sdk), unmodified, against a running loosely server.
// Usage: LOOSELY_ENDPOINT=http://127.0.0.1:PORT node v2_check.mjs query|json
//   query: aws-sdk 2.1490.0, the last v2 release whose SQS client speaks the Query protocol;
//   json:  the latest v2 release, whose SQS client speaks AWS JSON 1.0. SNS is Query in both.
// The SDK checks MD5OfMessageBody (SendMessage, SendMessageBatch) and MD5OfBody (ReceiveMessage)
// itself (computeChecksums, on by default); it does not check the attribute digests, so this script
// computes those the way AWS documents and compares. Prints one JSON line
// {"ok": true, "sdk": ..., "protocol": ..., "checks": [...]} and exits 0, or prints the failure and exits 1.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";

const PACKAGES = { query: "aws-sdk-query", json: "aws-sdk-json" };
const variant = process.argv[2];
const endpoint = process.env.LOOSELY_ENDPOINT;
if (!PACKAGES[variant] || !endpoint) {
  console.error("usage: LOOSELY_ENDPOINT=http://HOST:PORT node v2_check.mjs query|json");
  process.exit(2);
}
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = "1";
const require = createRequire(import.meta.url);
const AWS = require(PACKAGES[variant]);
const sdkVersion = require(`${PACKAGES[variant]}/package.json`).version;
const ACCOUNT = "000000000000";
const REGION = "us-east-1";
const started = Date.now();

const options = {
  endpoint,
  region: REGION,
  credentials: new AWS.Credentials("AKIAIOSFODNN7EXAMPLE", "secret"),
  maxRetries: 0,
  httpOptions: { connectTimeout: 3000, timeout: 15000 },
};
const sqs = new AWS.SQS(options);
const sns = new AWS.SNS(options);

// Every request as it goes on the wire: which protocol the SDK really spoke, and to which host.
const wire = [];
AWS.events.on("send", (resp) => {
  const req = resp.request;
  wire.push({
    service: req.service.api.serviceId,
    operation: req.operation,
    contentType: req.httpRequest.headers["Content-Type"],
    target: req.httpRequest.headers["X-Amz-Target"],
    host: req.httpRequest.endpoint.host,
  });
});

const suffix = Math.random().toString(36).slice(2, 10);
const checks = [];
const md5 = (data) => createHash("md5").update(data).digest("hex");

// AWS's MD5OfMessageAttributes: names sorted; for each, length-prefixed name and data type, a
// transport byte (1 String/Number, 2 Binary), then the length-prefixed value.
function attributesDigest(attributes) {
  const parts = [];
  const prefixed = (bytes) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const { DataType, StringValue, BinaryValue } = attributes[name];
    prefixed(Buffer.from(name, "utf8"));
    prefixed(Buffer.from(DataType, "utf8"));
    if (DataType.startsWith("Binary")) {
      parts.push(Buffer.from([2]));
      prefixed(Buffer.from(BinaryValue));
    } else {
      parts.push(Buffer.from([1]));
      prefixed(Buffer.from(StringValue, "utf8"));
    }
  }
  return md5(Buffer.concat(parts));
}

async function until(what, deadlineMs, poll) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await poll();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function expectError(promise, code, statusCode, message) {
  let error;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  assert.ok(error, `expected ${code}, the call succeeded`);
  assert.equal(error.code, code, `${error.code}: ${error.message}`);
  assert.equal(error.statusCode, statusCode);
  if (message !== undefined) assert.equal(error.message, message);
  assert.equal(error.retryable, false);
  assert.ok(error.requestId, "no request id");
  return error;
}

// Receive until `count` messages arrived (deadline), deleting none; returns them in arrival order.
async function receiveAll(QueueUrl, count, params = {}) {
  const got = [];
  await until(`${count} messages`, 5000, async () => {
    const { Messages } = await sqs
      .receiveMessage({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, ...params })
      .promise();
    got.push(...(Messages ?? []));
    return got.length >= count;
  });
  assert.equal(got.length, count);
  return got;
}

const queueUrl = (name) => `${endpoint}/${ACCOUNT}/${name}`;

// Non-ASCII (two-, three- and four-byte UTF-8), XML-special characters and CR LF, which an XML
// answer must escape to give the same body back.
const BODY = "héllo wörld ✓ 日本語 🚀𝄞 <tag attr=\"v\"> & 'quote'\r\nline two\ttab";
const ATTRIBUTES = {
  text: { DataType: "String", StringValue: "café ☕ 東京 🚀" },
  count: { DataType: "Number", StringValue: "-273.15" },
  "Number.float-custom": { DataType: "Number.float", StringValue: "3.14159" },
  payload: { DataType: "Binary", BinaryValue: Buffer.from([0, 1, 2, 127, 128, 200, 255, 10, 13]) },
  json: { DataType: "String.json", StringValue: JSON.stringify({ name: "Zoë", emoji: "😀", n: 1 }) },
  "gz.data": { DataType: "Binary.gz", BinaryValue: Buffer.from("\u00ff\u00fe binary ✓", "utf8") },
  "a_b-c.d": { DataType: "String", StringValue: "<&>\"'\r\n" },
};

function assertAttributes(received, sent) {
  assert.deepEqual(Object.keys(received ?? {}).sort(), Object.keys(sent).sort());
  for (const [name, { DataType, StringValue, BinaryValue }] of Object.entries(sent)) {
    const got = received[name];
    assert.equal(got.DataType, DataType, name);
    if (BinaryValue !== undefined) {
      assert.ok(Buffer.isBuffer(got.BinaryValue), `${name} is not a Buffer`);
      assert.ok(got.BinaryValue.equals(BinaryValue), name);
      assert.equal(got.StringValue, undefined, name);
    } else {
      assert.equal(got.StringValue, StringValue, name);
      assert.equal(got.BinaryValue, undefined, name);
    }
  }
}

// The SDK really checks the body digest: change the digest in the raw answer and it must refuse.
async function tamperedDigest(request, digest) {
  let replaced = false;
  request.on("httpDone", (resp) => {
    const text = resp.httpResponse.body.toString("utf8");
    replaced = text.includes(digest);
    resp.httpResponse.body = Buffer.from(text.split(digest).join("0".repeat(32)), "utf8");
  });
  let error;
  try {
    await request.promise();
  } catch (caught) {
    error = caught;
  }
  assert.ok(replaced, `the answer did not carry ${digest}`);
  assert.ok(error, "a wrong digest was accepted");
  assert.equal(error.code, "InvalidChecksum");
  assert.match(error.message, /returned an invalid MD5 response/);
}

const names = {
  main: `v2-${suffix}-main`,
  other: `v2-${suffix}-other`,
  fifo: `v2-${suffix}.fifo`,
};
const urls = {};

async function createGetListQueues() {
  for (const key of ["main", "other"]) {
    const created = await sqs.createQueue({ QueueName: names[key] }).promise();
    assert.equal(created.QueueUrl, queueUrl(names[key]));
    urls[key] = created.QueueUrl;
  }
  const again = await sqs.createQueue({ QueueName: names.main }).promise();
  assert.equal(again.QueueUrl, urls.main);
  const got = await sqs.getQueueUrl({ QueueName: names.other }).promise();
  assert.equal(got.QueueUrl, urls.other);
  const listed = await sqs.listQueues({ QueueNamePrefix: `v2-${suffix}-` }).promise();
  assert.deepEqual([...listed.QueueUrls].sort(), [urls.main, urls.other].sort());
  const none = await sqs.listQueues({ QueueNamePrefix: `v2-${suffix}-nothing` }).promise();
  assert.equal((none.QueueUrls ?? []).length, 0);
  checks.push("create-get-list-queues");
}

async function queueAttributes() {
  const { Attributes } = await sqs.getQueueAttributes({ QueueUrl: urls.main, AttributeNames: ["All"] }).promise();
  assert.deepEqual(Object.keys(Attributes).sort(), [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "DelaySeconds",
    "LastModifiedTimestamp",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "QueueArn",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
  ]);
  assert.equal(Attributes.QueueArn, `arn:aws:sqs:${REGION}:${ACCOUNT}:${names.main}`);
  assert.equal(Attributes.VisibilityTimeout, "30");
  assert.equal(Attributes.MaximumMessageSize, "1048576");
  assert.equal(Attributes.MessageRetentionPeriod, "345600");
  assert.equal(Attributes.ApproximateNumberOfMessages, "0");
  assert.ok(Math.abs(Number(Attributes.CreatedTimestamp) * 1000 - Date.now()) < 60_000);
  await sqs
    .setQueueAttributes({
      QueueUrl: urls.main,
      Attributes: { VisibilityTimeout: "7", MessageRetentionPeriod: "3600" },
    })
    .promise();
  const after = await sqs
    .getQueueAttributes({ QueueUrl: urls.main, AttributeNames: ["VisibilityTimeout", "MessageRetentionPeriod"] })
    .promise();
  assert.deepEqual(after.Attributes, { VisibilityTimeout: "7", MessageRetentionPeriod: "3600" });
  checks.push("queue-attributes");
}

async function queueTags() {
  await sqs.tagQueue({ QueueUrl: urls.main, Tags: { team: "qa", "ünïcode": "värde ✓", Team: "other" } }).promise();
  const tagged = await sqs.listQueueTags({ QueueUrl: urls.main }).promise();
  assert.deepEqual(tagged.Tags, { team: "qa", "ünïcode": "värde ✓", Team: "other" });
  await sqs.untagQueue({ QueueUrl: urls.main, TagKeys: ["team"] }).promise();
  const untagged = await sqs.listQueueTags({ QueueUrl: urls.main }).promise();
  assert.deepEqual(untagged.Tags, { "ünïcode": "värde ✓", Team: "other" });
  checks.push("queue-tags");
}

async function sendMessageDigests() {
  const request = sqs.sendMessage({
    QueueUrl: urls.main,
    MessageBody: BODY,
    MessageAttributes: ATTRIBUTES,
    MessageSystemAttributes: {
      AWSTraceHeader: { DataType: "String", StringValue: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1" },
    },
  });
  // The SDK's own body check is wired in for this request.
  assert.ok(request.listeners("extractData").some((fn) => fn.name === "verifySendMessageChecksum"));
  const sent = await request.promise();
  assert.match(sent.MessageId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(sent.MD5OfMessageBody, md5(Buffer.from(BODY, "utf8")));
  assert.equal(sent.MD5OfMessageAttributes, attributesDigest(ATTRIBUTES));
  assert.equal(
    sent.MD5OfMessageSystemAttributes,
    attributesDigest({
      AWSTraceHeader: { DataType: "String", StringValue: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1" },
    }),
  );
  checks.push("send-message-md5");
  return sent;
}

const BATCH = [
  { Id: "plain", MessageBody: "batch plain" },
  { Id: "unicode-1", MessageBody: "ünïcödé 🚀 \r\n <b>&amp;</b>", MessageAttributes: { text: ATTRIBUTES.text } },
  {
    Id: "typed_2",
    MessageBody: "{\"json\": \"✓\"}",
    MessageAttributes: { json: ATTRIBUTES.json, payload: ATTRIBUTES.payload, count: ATTRIBUTES.count },
  },
];

async function sendBatchDigests() {
  const batch = await sqs.sendMessageBatch({ QueueUrl: urls.main, Entries: BATCH }).promise();
  assert.equal((batch.Failed ?? []).length, 0);
  assert.deepEqual(batch.Successful.map((e) => e.Id).sort(), BATCH.map((e) => e.Id).sort());
  for (const entry of BATCH) {
    const result = batch.Successful.find((e) => e.Id === entry.Id);
    assert.equal(result.MD5OfMessageBody, md5(Buffer.from(entry.MessageBody, "utf8")));
    const attributesMd5 = entry.MessageAttributes ? attributesDigest(entry.MessageAttributes) : undefined;
    assert.equal(result.MD5OfMessageAttributes, attributesMd5);
  }
  checks.push("send-batch-md5");
  return batch;
}

async function receiveDigestsAndSystemAttributes(sent, batch) {
  const before = Date.now();
  const request = sqs.receiveMessage({
    QueueUrl: urls.main,
    MaxNumberOfMessages: 10,
    WaitTimeSeconds: 1,
    MessageAttributeNames: ["All"],
    AttributeNames: ["All"],
    VisibilityTimeout: 30,
  });
  assert.ok(request.listeners("extractData").some((fn) => fn.name === "verifyReceiveMessageChecksum"));
  const first = (await request.promise()).Messages ?? [];
  const all = { MessageAttributeNames: ["All"], AttributeNames: ["All"] };
  const rest = first.length < 4 ? await receiveAll(urls.main, 4 - first.length, all) : [];
  const messages = [...first, ...rest];
  assert.equal(messages.length, 4);
  const byId = new Map(messages.map((m) => [m.MessageId, m]));
  const single = byId.get(sent.MessageId);
  assert.ok(single, "the single message was not received");
  assert.equal(single.Body, BODY);
  assert.equal(single.MD5OfBody, md5(Buffer.from(BODY, "utf8")));
  assertAttributes(single.MessageAttributes, ATTRIBUTES);
  assert.equal(single.MD5OfMessageAttributes, attributesDigest(ATTRIBUTES));
  assert.equal(single.Attributes.AWSTraceHeader, "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
  assert.equal(single.Attributes.ApproximateReceiveCount, "1");
  assert.ok(single.Attributes.SenderId);
  const sentAt = Number(single.Attributes.SentTimestamp);
  assert.ok(sentAt <= Date.now() && sentAt > started - 1000, `SentTimestamp ${sentAt}`);
  const firstReceive = Number(single.Attributes.ApproximateFirstReceiveTimestamp);
  assert.ok(firstReceive >= sentAt && firstReceive <= Date.now() && firstReceive >= before - 1000);
  for (const entry of BATCH) {
    const id = batch.Successful.find((e) => e.Id === entry.Id).MessageId;
    const message = byId.get(id);
    assert.ok(message, `batch entry ${entry.Id} was not received`);
    assert.equal(message.Body, entry.MessageBody);
    if (entry.MessageAttributes) {
      assertAttributes(message.MessageAttributes, entry.MessageAttributes);
      assert.equal(message.MD5OfMessageAttributes, attributesDigest(entry.MessageAttributes));
    } else {
      assert.equal(message.MessageAttributes, undefined);
      assert.equal(message.MD5OfMessageAttributes, undefined);
    }
  }
  checks.push("receive-md5-attributes");

  // Hand them back, then ask for two system attributes by name and one message attribute.
  await sqs
    .changeMessageVisibilityBatch({
      QueueUrl: urls.main,
      Entries: messages.map((m, i) => ({ Id: `m${i}`, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 })),
    })
    .promise();
  const again = await receiveAll(urls.main, 4, {
    AttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
    MessageAttributeNames: ["text"],
  });
  for (const message of again) {
    assert.deepEqual(Object.keys(message.Attributes).sort(), ["ApproximateReceiveCount", "SentTimestamp"]);
    assert.equal(message.Attributes.ApproximateReceiveCount, "2");
    const original = messages.find((m) => m.MessageId === message.MessageId);
    assert.equal(message.Attributes.SentTimestamp, original.Attributes.SentTimestamp);
    if (original.MessageAttributes?.text) {
      assertAttributes(message.MessageAttributes, { text: ATTRIBUTES.text });
      assert.equal(message.MD5OfMessageAttributes, attributesDigest({ text: ATTRIBUTES.text }));
    } else if (original.MessageAttributes && variant === "json") {
      // Attributes, none of them asked for: AWS JSON answers an empty map (recorded from AWS), which
      // Query cannot show.
      assert.deepEqual(message.MessageAttributes, {});
      assert.equal(message.MD5OfMessageAttributes, undefined);
    } else {
      assert.equal(message.MessageAttributes, undefined);
      assert.equal(message.MD5OfMessageAttributes, undefined);
    }
  }
  checks.push("system-attributes");
  return again;
}

async function visibilityAndDelete(messages) {
  // ChangeMessageVisibility on one, a batch with a bad receipt: that entry fails alone.
  const [a, b, c, d] = messages;
  await sqs
    .changeMessageVisibility({ QueueUrl: urls.main, ReceiptHandle: a.ReceiptHandle, VisibilityTimeout: 0 })
    .promise();
  const changed = await sqs
    .changeMessageVisibilityBatch({
      QueueUrl: urls.main,
      Entries: [
        { Id: "good", ReceiptHandle: b.ReceiptHandle, VisibilityTimeout: 0 },
        { Id: "bad", ReceiptHandle: "garbage", VisibilityTimeout: 0 },
      ],
    })
    .promise();
  assert.deepEqual(changed.Successful, [{ Id: "good" }]);
  assert.equal(changed.Failed.length, 1);
  assert.equal(changed.Failed[0].Id, "bad");
  assert.equal(changed.Failed[0].Code, "ReceiptHandleIsInvalid");
  assert.equal(changed.Failed[0].SenderFault, true);
  assert.equal(changed.Failed[0].Message, 'The input receipt handle "garbage" is not a valid receipt handle.');
  const back = await receiveAll(urls.main, 2, { VisibilityTimeout: 30 });
  assert.deepEqual(back.map((m) => m.MessageId).sort(), [a.MessageId, b.MessageId].sort());
  checks.push("change-visibility-batch-partial");

  await sqs.deleteMessage({ QueueUrl: urls.main, ReceiptHandle: back[0].ReceiptHandle }).promise();
  const deleted = await sqs
    .deleteMessageBatch({
      QueueUrl: urls.main,
      Entries: [
        { Id: "x", ReceiptHandle: back[1].ReceiptHandle },
        { Id: "y", ReceiptHandle: c.ReceiptHandle },
        { Id: "z", ReceiptHandle: d.ReceiptHandle },
        { Id: "bad", ReceiptHandle: "garbage" },
      ],
    })
    .promise();
  assert.deepEqual(deleted.Successful.map((e) => e.Id).sort(), ["x", "y", "z"]);
  assert.equal(deleted.Failed.length, 1);
  assert.equal(deleted.Failed[0].Id, "bad");
  assert.equal(deleted.Failed[0].Code, "ReceiptHandleIsInvalid");
  assert.equal(deleted.Failed[0].SenderFault, true);
  const { Attributes } = await sqs
    .getQueueAttributes({
      QueueUrl: urls.main,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    })
    .promise();
  assert.deepEqual(Attributes, { ApproximateNumberOfMessages: "0", ApproximateNumberOfMessagesNotVisible: "0" });
  checks.push("delete-message-batch");
}

async function checksumEnforced() {
  // On a queue of its own: the tampered send leaves a message behind.
  const { QueueUrl } = await sqs.createQueue({ QueueName: `v2-${suffix}-tamper` }).promise();
  await tamperedDigest(sqs.sendMessage({ QueueUrl, MessageBody: BODY }), md5(Buffer.from(BODY, "utf8")));
  await tamperedDigest(
    sqs.sendMessageBatch({ QueueUrl, Entries: [{ Id: "one", MessageBody: "tampered batch ✓" }] }),
    md5(Buffer.from("tampered batch ✓", "utf8")),
  );
  await tamperedDigest(
    sqs.receiveMessage({ QueueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 1 }),
    md5(Buffer.from(BODY, "utf8")),
  );
  await sqs.deleteQueue({ QueueUrl }).promise();
  checks.push("checksum-enforced");
}

async function fifoOrder() {
  const created = await sqs
    .createQueue({ QueueName: names.fifo, Attributes: { FifoQueue: "true" } })
    .promise();
  urls.fifo = created.QueueUrl;
  assert.equal(urls.fifo, queueUrl(names.fifo));
  const plan = [
    ["a", "a1"],
    ["b", "b1"],
    ["a", "a2"],
    ["b", "b2"],
    ["a", "a3 ✓"],
  ];
  const sequence = [];
  for (const [group, body] of plan) {
    const sent = await sqs
      .sendMessage({
        QueueUrl: urls.fifo,
        MessageBody: body,
        MessageGroupId: group,
        MessageDeduplicationId: `d-${body.slice(0, 2)}`,
      })
      .promise();
    assert.equal(sent.MD5OfMessageBody, md5(Buffer.from(body, "utf8")));
    assert.match(sent.SequenceNumber, /^\d+$/);
    sequence.push(BigInt(sent.SequenceNumber));
  }
  // A duplicate deduplication id is accepted, not delivered again.
  const duplicate = await sqs
    .sendMessage({ QueueUrl: urls.fifo, MessageBody: "a1 again", MessageGroupId: "a", MessageDeduplicationId: "d-a1" })
    .promise();
  assert.ok(duplicate.MessageId);
  const batch = await sqs
    .sendMessageBatch({
      QueueUrl: urls.fifo,
      Entries: [
        { Id: "b3", MessageBody: "b3", MessageGroupId: "b", MessageDeduplicationId: "d-b3" },
        { Id: "a4", MessageBody: "a4", MessageGroupId: "a", MessageDeduplicationId: "d-a4" },
      ],
    })
    .promise();
  assert.deepEqual(batch.Successful.map((e) => e.Id), ["b3", "a4"]);
  sequence.push(...batch.Successful.map((e) => BigInt(e.SequenceNumber)));
  for (let i = 1; i < sequence.length; i++) assert.ok(sequence[i] > sequence[i - 1], "SequenceNumber not increasing");

  const order = { a: [], b: [] };
  const seen = [];
  await until("7 FIFO messages", 6000, async () => {
    const { Messages } = await sqs
      .receiveMessage({ QueueUrl: urls.fifo, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, AttributeNames: ["All"] })
      .promise();
    for (const m of Messages ?? []) {
      order[m.Attributes.MessageGroupId].push(m.Body);
      seen.push(m);
      assert.equal(m.Attributes.MessageDeduplicationId, `d-${m.Body.slice(0, 2)}`);
      assert.match(m.Attributes.SequenceNumber, /^\d+$/);
    }
    if (Messages?.length) {
      await sqs
        .deleteMessageBatch({
          QueueUrl: urls.fifo,
          Entries: Messages.map((m, i) => ({ Id: `e${i}`, ReceiptHandle: m.ReceiptHandle })),
        })
        .promise();
    }
    return seen.length >= 7;
  });
  assert.deepEqual(order, { a: ["a1", "a2", "a3 ✓", "a4"], b: ["b1", "b2", "b3"] });
  const left = await sqs.receiveMessage({ QueueUrl: urls.fifo, WaitTimeSeconds: 0 }).promise();
  assert.equal((left.Messages ?? []).length, 0, "the duplicate was delivered");
  checks.push("fifo-order");
}

async function longPolling() {
  // An empty long poll waits its time out, then answers no messages.
  let begin = Date.now();
  const empty = await sqs.receiveMessage({ QueueUrl: urls.other, WaitTimeSeconds: 1 }).promise();
  let took = Date.now() - begin;
  assert.equal((empty.Messages ?? []).length, 0);
  assert.ok(took >= 900 && took < 4000, `empty 1 s long poll took ${took} ms`);
  // A waiting long poll answers as soon as a message arrives.
  begin = Date.now();
  const waiting = sqs.receiveMessage({ QueueUrl: urls.other, WaitTimeSeconds: 10 }).promise();
  await new Promise((resolve) => setTimeout(resolve, 400));
  await sqs.sendMessage({ QueueUrl: urls.other, MessageBody: "wake up ⏰" }).promise();
  const got = await waiting;
  took = Date.now() - begin;
  assert.equal(got.Messages?.length, 1);
  assert.equal(got.Messages[0].Body, "wake up ⏰");
  assert.ok(took >= 350 && took < 4000, `woken long poll took ${took} ms`);
  checks.push("long-polling");
}

async function typedErrors() {
  const message =
    variant === "query"
      ? "The specified queue does not exist for this wsdl version."
      : "The specified queue does not exist.";
  const missing = await expectError(
    sqs.getQueueUrl({ QueueName: `v2-${suffix}-missing` }).promise(),
    "AWS.SimpleQueueService.NonExistentQueue",
    400,
    message,
  );
  // Over AWS JSON the body names the shape; the SDK reports the Query-era code of x-amzn-query-error.
  assert.equal(missing.__type, variant === "json" ? "com.amazonaws.sqs#QueueDoesNotExist" : undefined);
  await expectError(
    sqs.sendMessage({ QueueUrl: queueUrl(`v2-${suffix}-missing`), MessageBody: "x" }).promise(),
    "AWS.SimpleQueueService.NonExistentQueue",
    400,
    message,
  );
  await expectError(
    sqs.deleteMessage({ QueueUrl: urls.other, ReceiptHandle: "garbage" }).promise(),
    "ReceiptHandleIsInvalid",
    404,
    'The input receipt handle "garbage" is not a valid receipt handle.',
  );
  checks.push("typed-error");
}

async function purgeAndDeleteQueues() {
  await sqs
    .sendMessageBatch({
      QueueUrl: urls.other,
      Entries: [1, 2, 3].map((n) => ({ Id: `p${n}`, MessageBody: `purge me ${n}` })),
    })
    .promise();
  await until("3 messages counted", 3000, async () => {
    const { Attributes } = await sqs
      .getQueueAttributes({ QueueUrl: urls.other, AttributeNames: ["ApproximateNumberOfMessages"] })
      .promise();
    return Attributes.ApproximateNumberOfMessages === "3";
  });
  await sqs.purgeQueue({ QueueUrl: urls.other }).promise();
  await until("an empty queue after the purge", 3000, async () => {
    const { Attributes } = await sqs
      .getQueueAttributes({ QueueUrl: urls.other, AttributeNames: ["ApproximateNumberOfMessages"] })
      .promise();
    return Attributes.ApproximateNumberOfMessages === "0";
  });
  const after = await sqs.receiveMessage({ QueueUrl: urls.other, WaitTimeSeconds: 0 }).promise();
  assert.equal((after.Messages ?? []).length, 0);
  await expectError(
    sqs.purgeQueue({ QueueUrl: urls.other }).promise(),
    "AWS.SimpleQueueService.PurgeQueueInProgress",
    403,
    `Only one PurgeQueue operation on ${names.other} is allowed every 60 seconds.`,
  );
  checks.push("purge-queue");

  for (const key of ["main", "other", "fifo"]) await sqs.deleteQueue({ QueueUrl: urls[key] }).promise();
  await until("deleted queues gone", 3000, async () => {
    const listed = await sqs.listQueues({ QueueNamePrefix: `v2-${suffix}` }).promise();
    return (listed.QueueUrls ?? []).length === 0;
  });
  await expectError(
    sqs.getQueueUrl({ QueueName: names.main }).promise(),
    "AWS.SimpleQueueService.NonExistentQueue",
    400,
  );
  checks.push("delete-queue");
}

// SNS (Query in every v2 release).
async function snsChecks() {
  const topicName = `v2-${suffix}-topic`;
  const { TopicArn } = await sns.createTopic({ Name: topicName, Attributes: { DisplayName: "v2 ✓" } }).promise();
  assert.equal(TopicArn, `arn:aws:sns:${REGION}:${ACCOUNT}:${topicName}`);
  const again = await sns.createTopic({ Name: topicName, Attributes: { DisplayName: "v2 ✓" } }).promise();
  assert.equal(again.TopicArn, TopicArn);
  const { Attributes: topic } = await sns.getTopicAttributes({ TopicArn }).promise();
  assert.equal(topic.TopicArn, TopicArn);
  assert.equal(topic.DisplayName, "v2 ✓");
  assert.equal(topic.Owner, ACCOUNT);
  await sns.setTopicAttributes({ TopicArn, AttributeName: "DisplayName", AttributeValue: "renamed" }).promise();
  assert.equal((await sns.getTopicAttributes({ TopicArn }).promise()).Attributes.DisplayName, "renamed");
  const topics = [];
  let NextToken;
  do {
    const page = await sns.listTopics({ NextToken }).promise();
    topics.push(...page.Topics.map((t) => t.TopicArn));
    NextToken = page.NextToken;
  } while (NextToken);
  assert.ok(topics.includes(TopicArn));
  checks.push("sns-create-topic");

  const queues = {};
  for (const kind of ["raw", "envelope"]) {
    const { QueueUrl } = await sqs.createQueue({ QueueName: `v2-${suffix}-sns-${kind}` }).promise();
    const { Attributes } = await sqs.getQueueAttributes({ QueueUrl, AttributeNames: ["QueueArn"] }).promise();
    queues[kind] = { url: QueueUrl, arn: Attributes.QueueArn };
  }
  const raw = await sns
    .subscribe({
      TopicArn,
      Protocol: "sqs",
      Endpoint: queues.raw.arn,
      Attributes: { RawMessageDelivery: "true" },
      ReturnSubscriptionArn: true,
    })
    .promise();
  const envelope = await sns
    .subscribe({ TopicArn, Protocol: "sqs", Endpoint: queues.envelope.arn, ReturnSubscriptionArn: true })
    .promise();
  for (const arn of [raw.SubscriptionArn, envelope.SubscriptionArn]) {
    assert.match(arn, new RegExp(`^${TopicArn}:[0-9a-f-]{36}$`));
  }
  const byTopic = await sns.listSubscriptionsByTopic({ TopicArn }).promise();
  assert.deepEqual(
    byTopic.Subscriptions.map((s) => [s.SubscriptionArn, s.Protocol, s.Endpoint, s.Owner]).sort(),
    [
      [raw.SubscriptionArn, "sqs", queues.raw.arn, ACCOUNT],
      [envelope.SubscriptionArn, "sqs", queues.envelope.arn, ACCOUNT],
    ].sort(),
  );
  const rawAttributes = (
    await sns.getSubscriptionAttributes({ SubscriptionArn: raw.SubscriptionArn }).promise()
  ).Attributes;
  assert.equal(rawAttributes.RawMessageDelivery, "true");
  assert.equal(rawAttributes.PendingConfirmation, "false");
  assert.equal(rawAttributes.TopicArn, TopicArn);
  const envelopeAttributes = (
    await sns.getSubscriptionAttributes({ SubscriptionArn: envelope.SubscriptionArn }).promise()
  ).Attributes;
  assert.equal(envelopeAttributes.RawMessageDelivery, "false");
  checks.push("sns-subscribe-sqs");

  const message = "sns → sqs ✓ 🚀 <x>&amp;</x>\r\nend";
  const snsAttributes = {
    text: { DataType: "String", StringValue: "grüße 🌍" },
    count: { DataType: "Number", StringValue: "42.5" },
    blob: { DataType: "Binary", BinaryValue: Buffer.from([0, 255, 1, 254]) },
  };
  const published = await sns
    .publish({ TopicArn, Message: message, Subject: "Sübject", MessageAttributes: snsAttributes })
    .promise();
  assert.match(published.MessageId, /^[0-9a-f-]{36}$/);
  const [rawMessage] = await receiveAll(queues.raw.url, 1, { MessageAttributeNames: ["All"] });
  assert.equal(rawMessage.Body, message);
  assertAttributes(rawMessage.MessageAttributes, snsAttributes);
  assert.equal(rawMessage.MD5OfMessageAttributes, attributesDigest(snsAttributes));
  const [wrapped] = await receiveAll(queues.envelope.url, 1, { MessageAttributeNames: ["All"] });
  assert.equal(wrapped.MessageAttributes, undefined);
  const body = JSON.parse(wrapped.Body);
  assert.equal(body.Type, "Notification");
  assert.equal(body.MessageId, published.MessageId);
  assert.equal(body.TopicArn, TopicArn);
  assert.equal(body.Subject, "Sübject");
  assert.equal(body.Message, message);
  assert.equal(body.SignatureVersion, "1");
  assert.ok(body.Signature && body.SigningCertURL && body.UnsubscribeURL);
  assert.deepEqual(body.MessageAttributes, {
    text: { Type: "String", Value: "grüße 🌍" },
    count: { Type: "Number", Value: "42.5" },
    blob: { Type: "Binary", Value: Buffer.from([0, 255, 1, 254]).toString("base64") },
  });
  for (const [url, m] of [
    [queues.raw.url, rawMessage],
    [queues.envelope.url, wrapped],
  ]) {
    await sqs.deleteMessage({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }).promise();
  }
  checks.push("sns-publish-attributes");

  const batch = await sns
    .publishBatch({
      TopicArn,
      PublishBatchRequestEntries: [
        { Id: "one", Message: "batch one ✓", MessageAttributes: { text: snsAttributes.text } },
        { Id: "two", Message: "batch two", Subject: "second" },
      ],
    })
    .promise();
  assert.equal((batch.Failed ?? []).length, 0);
  assert.deepEqual(batch.Successful.map((e) => e.Id).sort(), ["one", "two"]);
  const rawBatch = await receiveAll(queues.raw.url, 2, { MessageAttributeNames: ["All"] });
  const rawByBody = new Map(rawBatch.map((m) => [m.Body, m]));
  assert.deepEqual([...rawByBody.keys()].sort(), ["batch one ✓", "batch two"]);
  assertAttributes(rawByBody.get("batch one ✓").MessageAttributes, { text: snsAttributes.text });
  const envelopeBatch = await receiveAll(queues.envelope.url, 2);
  const ids = new Map(batch.Successful.map((e) => [e.Id, e.MessageId]));
  const bodies = envelopeBatch.map((m) => JSON.parse(m.Body)).sort((x, y) => x.Message.localeCompare(y.Message));
  assert.deepEqual(
    bodies.map((b) => [b.MessageId, b.Message, b.Subject]),
    [
      [ids.get("one"), "batch one ✓", undefined],
      [ids.get("two"), "batch two", "second"],
    ],
  );
  checks.push("sns-publish-batch");

  const missing = `arn:aws:sns:${REGION}:${ACCOUNT}:v2-${suffix}-missing`;
  await expectError(sns.getTopicAttributes({ TopicArn: missing }).promise(), "NotFound", 404, "Topic does not exist");
  const publishToMissing = sns.publish({ TopicArn: missing, Message: "x" }).promise();
  await expectError(publishToMissing, "NotFound", 404, "Topic does not exist");
  checks.push("sns-typed-error");

  await sns.unsubscribe({ SubscriptionArn: envelope.SubscriptionArn }).promise();
  await sns.deleteTopic({ TopicArn }).promise();
  await expectError(sns.getTopicAttributes({ TopicArn }).promise(), "NotFound", 404);
  // The topic's subscriptions go with it (AWS removes them shortly after).
  for (const { SubscriptionArn } of [raw, envelope]) {
    const error = await until("the subscription removed", 3000, () =>
      sns.getSubscriptionAttributes({ SubscriptionArn }).promise().then(
        () => null,
        (caught) => caught,
      ),
    );
    assert.equal(error.code, "NotFound");
    assert.equal(error.statusCode, 404);
    assert.equal(error.message, "Subscription does not exist");
  }
  for (const kind of ["raw", "envelope"]) await sqs.deleteQueue({ QueueUrl: queues[kind].url }).promise();
  checks.push("sns-delete-topic");
}

// What went over the wire: SQS in the protocol of this release, SNS in Query, to the server's host.
function wireProtocol() {
  const host = new URL(endpoint).host;
  const sqsRequests = wire.filter((w) => w.service === "SQS");
  const snsRequests = wire.filter((w) => w.service === "SNS");
  assert.ok(sqsRequests.length > 20 && snsRequests.length > 10);
  assert.equal(sqs.api.protocol, variant);
  for (const w of sqsRequests) {
    if (variant === "query") {
      assert.match(w.contentType, /^application\/x-www-form-urlencoded/, w.operation);
      assert.equal(w.target, undefined, w.operation);
    } else {
      assert.equal(w.contentType, "application/x-amz-json-1.0", w.operation);
      assert.equal(w.target, `AmazonSQS.${w.operation[0].toUpperCase()}${w.operation.slice(1)}`);
    }
  }
  for (const w of snsRequests) assert.match(w.contentType, /^application\/x-www-form-urlencoded/, w.operation);
  assert.deepEqual([...new Set(wire.map((w) => w.host))], [host]);
  checks.push("wire-protocol");
}

try {
  await createGetListQueues();
  await queueAttributes();
  await queueTags();
  const sent = await sendMessageDigests();
  const batch = await sendBatchDigests();
  const received = await receiveDigestsAndSystemAttributes(sent, batch);
  await visibilityAndDelete(received);
  await checksumEnforced();
  await fifoOrder();
  await longPolling();
  await typedErrors();
  await purgeAndDeleteQueues();
  await snsChecks();
  wireProtocol();
  console.log(
    JSON.stringify({ ok: true, sdk: sdkVersion, protocol: variant, seconds: (Date.now() - started) / 1000, checks }),
  );
} catch (error) {
  console.error(error);
  console.log(JSON.stringify({ ok: false, sdk: sdkVersion, protocol: variant, checks, error: String(error) }));
  process.exit(1);
}
