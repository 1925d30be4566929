// aws-sdk-js v3 SNS against a running loosely server. Usage: LOOSELY_ENDPOINT=http://127.0.0.1:PORT node sns_check.mjs
// A topic fans out to an SQS queue (read with @aws-sdk/client-sqs): the envelope's fields are checked and its
// signature verified against the certificate at SigningCertURL, as a Node.js subscriber would.
// Prints one JSON line {"ok": true, "checks": [...]} and exits 0, or prints the failure and exits 1.
import assert from "node:assert/strict";
import { createVerify } from "node:crypto";
import {
  CreateTopicCommand,
  DeleteTopicCommand,
  GetTopicAttributesCommand,
  InvalidParameterException,
  ListSubscriptionsByTopicCommand,
  NotFoundException,
  PublishBatchCommand,
  PublishCommand,
  SNSClient,
  SNSServiceException,
  SubscribeCommand,
} from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { clientConfig, serverEndpoint } from "./server.mjs";

const config = clientConfig(serverEndpoint());
const sns = new SNSClient(config);
const sqs = new SQSClient(config);
const suffix = Math.random().toString(36).slice(2, 10);
const checks = [];

// The string SNS signs for a Notification: each present field's name and value, one per line, in this order.
function canonicalNotification(envelope) {
  const fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"];
  return fields
    .filter((name) => envelope[name] !== undefined)
    .map((name) => `${name}\n${envelope[name]}\n`)
    .join("");
}

async function verifySignature(envelope) {
  const response = await fetch(envelope.SigningCertURL);
  assert.equal(response.status, 200, `GET ${envelope.SigningCertURL}`);
  const certificate = await response.text();
  assert.match(certificate, /-----BEGIN CERTIFICATE-----/);
  const algorithm = envelope.SignatureVersion === "2" ? "RSA-SHA256" : "RSA-SHA1";
  const verifier = createVerify(algorithm);
  verifier.update(canonicalNotification(envelope), "utf8");
  assert.ok(verifier.verify(certificate, envelope.Signature, "base64"), "the envelope's signature does not verify");
}

async function receiveAll(QueueUrl, count) {
  const messages = [];
  for (let i = 0; i < 10 && messages.length < count; i++) {
    const receive = { QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"] };
    const got = await sqs.send(new ReceiveMessageCommand(receive));
    for (const m of got.Messages ?? []) {
      messages.push(m);
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  assert.equal(messages.length, count);
  return messages;
}

async function fanOut() {
  const name = `js-${suffix}`;
  const { TopicArn } = await sns.send(
    new CreateTopicCommand({ Name: name, Attributes: { SignatureVersion: "2" }, Tags: [{ Key: "from", Value: "js" }] }),
  );
  assert.equal(TopicArn, `arn:aws:sns:us-east-1:000000000000:${name}`);
  const { Attributes: topicAttributes } = await sns.send(new GetTopicAttributesCommand({ TopicArn }));
  assert.equal(topicAttributes.SignatureVersion, "2");

  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `js-sns-${suffix}` }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
  const { SubscriptionArn } = await sns.send(
    new SubscribeCommand({ TopicArn, Protocol: "sqs", Endpoint: Attributes.QueueArn, ReturnSubscriptionArn: true }),
  );
  assert.ok(SubscriptionArn.startsWith(`${TopicArn}:`), SubscriptionArn);
  checks.push("create-subscribe");

  const published = await sns.send(
    new PublishCommand({
      TopicArn,
      Subject: "From JS",
      Message: "hello from js ✓",
      MessageAttributes: {
        kind: { DataType: "String", StringValue: "greeting" },
        count: { DataType: "Number", StringValue: "3" },
        blob: { DataType: "Binary", BinaryValue: new Uint8Array([0, 1, 2, 255]) },
      },
    }),
  );
  assert.match(published.MessageId, /^[0-9a-f-]{36}$/);
  const batch = await sns.send(
    new PublishBatchCommand({
      TopicArn,
      PublishBatchRequestEntries: [
        { Id: "one", Message: "batch one" },
        { Id: "two", Message: "batch two", MessageAttributes: { kind: { DataType: "String", StringValue: "b" } } },
      ],
    }),
  );
  assert.deepEqual(batch.Successful.map((e) => e.Id), ["one", "two"]);
  assert.deepEqual(batch.Failed ?? [], []);
  checks.push("publish-batch");

  const envelopes = new Map();
  for (const message of await receiveAll(QueueUrl, 3)) {
    const envelope = JSON.parse(message.Body);
    envelopes.set(envelope.Message, envelope);
  }
  assert.deepEqual([...envelopes.keys()].sort(), ["batch one", "batch two", "hello from js ✓"]);
  const envelope = envelopes.get("hello from js ✓");
  assert.equal(envelope.Type, "Notification");
  assert.equal(envelope.MessageId, published.MessageId);
  assert.equal(envelope.TopicArn, TopicArn);
  assert.equal(envelope.Subject, "From JS");
  assert.match(envelope.Timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(envelope.SignatureVersion, "2");
  assert.ok(envelope.Signature);
  assert.match(envelope.SigningCertURL, /^https?:\/\/.+\.pem$/);
  const unsubscribe = new URL(envelope.UnsubscribeURL).searchParams;
  assert.equal(unsubscribe.get("Action"), "Unsubscribe");
  assert.equal(unsubscribe.get("SubscriptionArn"), SubscriptionArn);
  assert.deepEqual(envelope.MessageAttributes, {
    kind: { Type: "String", Value: "greeting" },
    count: { Type: "Number", Value: "3" },
    blob: { Type: "Binary", Value: Buffer.from([0, 1, 2, 255]).toString("base64") },
  });
  const second = envelopes.get("batch two");
  assert.equal(second.MessageId, batch.Successful[1].MessageId);
  assert.deepEqual(second.MessageAttributes, { kind: { Type: "String", Value: "b" } });
  for (const each of envelopes.values()) {
    await verifySignature(each);
  }
  checks.push("envelope");

  const listed = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
  assert.deepEqual(
    listed.Subscriptions.map((s) => [s.SubscriptionArn, s.Protocol, s.Endpoint, s.TopicArn]),
    [[SubscriptionArn, "sqs", Attributes.QueueArn, TopicArn]],
  );
  checks.push("list-subscriptions");

  return TopicArn;
}

// Errors arrive as the SDK's modelled exception classes; the topic is deleted on the way.
async function typedErrors(TopicArn) {
  await assert.rejects(sns.send(new PublishCommand({ TopicArn, Message: "" })), (err) => {
    assert.ok(err instanceof InvalidParameterException, `expected InvalidParameterException, got ${err?.name}`);
    assert.equal(err.message, "Invalid parameter: Empty message");
    assert.equal(err.$metadata.httpStatusCode, 400);
    return true;
  });
  await sns.send(new DeleteTopicCommand({ TopicArn }));
  try {
    await sns.send(new PublishCommand({ TopicArn, Message: "m" }));
  } catch (err) {
    assert.ok(err instanceof NotFoundException, `expected NotFoundException, got ${err?.name}: ${err?.message}`);
    assert.ok(err instanceof SNSServiceException);
    assert.equal(err.name, "NotFoundException");
    assert.equal(err.message, "Topic does not exist");
    assert.equal(err.$metadata.httpStatusCode, 404);
    checks.push("typed-error");
    return;
  }
  assert.fail("Publish to a deleted topic succeeded");
}

try {
  await typedErrors(await fanOut());
  console.log(JSON.stringify({ ok: true, checks }));
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exit(1);
} finally {
  sns.destroy();
  sqs.destroy();
}
