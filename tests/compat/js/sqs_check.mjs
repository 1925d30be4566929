// aws-sdk-js v3 against a running loosely server. Usage: LOOSELY_ENDPOINT=http://127.0.0.1:PORT node sqs_check.mjs
// The client checks MD5 digests of sent and received bodies itself; a mismatch fails the run.
// Prints one JSON line {"ok": true, "checks": [...]} and exits 0, or prints the failure and exits 1.
import assert from "node:assert/strict";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  SQSServiceException,
} from "@aws-sdk/client-sqs";
import { clientConfig, serverEndpoint } from "./server.mjs";

const client = new SQSClient(clientConfig(serverEndpoint()));
const suffix = Math.random().toString(36).slice(2, 10);
const checks = [];

async function standardQueue() {
  const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: `js-${suffix}` }));
  assert.match(QueueUrl, new RegExp(`/000000000000/js-${suffix}$`));
  const sent = await client.send(
    new SendMessageCommand({
      QueueUrl,
      MessageBody: "hello from js ✓",
      MessageAttributes: { kind: { DataType: "String", StringValue: "greeting" } },
    }),
  );
  assert.ok(sent.MessageId);
  const batch = await client.send(
    new SendMessageBatchCommand({
      QueueUrl,
      Entries: [
        { Id: "one", MessageBody: "batch one" },
        { Id: "two", MessageBody: "batch two" },
      ],
    }),
  );
  assert.equal(batch.Successful.length, 2);

  const bodies = new Map();
  for (let i = 0; i < 10 && bodies.size < 3; i++) {
    const got = await client.send(
      new ReceiveMessageCommand({
        QueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ["All"],
      }),
    );
    for (const m of got.Messages ?? []) {
      bodies.set(m.Body, m);
      await client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  assert.deepEqual([...bodies.keys()].sort(), ["batch one", "batch two", "hello from js ✓"]);
  assert.equal(bodies.get("hello from js ✓").MessageAttributes.kind.StringValue, "greeting");
  const after = await client.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 0 }));
  assert.equal(after.Messages, undefined);
  checks.push("send-receive-delete");
}

async function fifoQueue() {
  const { QueueUrl } = await client.send(
    new CreateQueueCommand({
      QueueName: `js-${suffix}.fifo`,
      Attributes: { FifoQueue: "true", ContentBasedDeduplication: "true" },
    }),
  );
  for (const body of ["first", "second", "third"]) {
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: body, MessageGroupId: "g" }));
  }
  const order = [];
  for (let i = 0; i < 10 && order.length < 3; i++) {
    const got = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of got.Messages ?? []) {
      order.push(m.Body);
      await client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  assert.deepEqual(order, ["first", "second", "third"]);
  checks.push("fifo-order");
}

async function missingQueue() {
  try {
    await client.send(new GetQueueUrlCommand({ QueueName: `missing-${suffix}` }));
  } catch (err) {
    assert.ok(err instanceof QueueDoesNotExist, `expected QueueDoesNotExist, got ${err?.name}: ${err?.message}`);
    assert.ok(err instanceof SQSServiceException);
    assert.equal(err.$metadata.httpStatusCode, 400);
    checks.push("typed-error");
    return;
  }
  assert.fail("GetQueueUrl of a missing queue succeeded");
}

try {
  await standardQueue();
  await fifoQueue();
  await missingQueue();
  console.log(JSON.stringify({ ok: true, checks }));
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exit(1);
} finally {
  client.destroy();
}
