// AWS's own SNS message validator (npm sns-validator, unmodified) against what a running loosely server delivers.
// Usage: LOOSELY_ENDPOINT=https://127.0.0.1:PORT NODE_EXTRA_CA_CERTS=ca.pem node sns_validator_check.mjs
// The endpoint must be the server's public URL over TLS (SigningCertURL derives from it, and the validator
// fetches the certificate with https.get, checking the TLS certificate against Node's trust store). The
// validator is given a host pattern matching exactly that host and port.
//
// For each SignatureVersion (1, 2): an HTTP endpoint (a Node server on 127.0.0.1) is subscribed, its
// SubscriptionConfirmation validated and confirmed, Notifications (with and without Subject, by Publish and by
// PublishBatch) validated, and the subscription removed; the UnsubscribeConfirmation is then checked (see
// unsubscribeConfirmationChecks: the validator leaves Token out of that type's string to sign). An SQS
// queue subscribed to the same topic (non-raw) gets the same notifications: each envelope is validated too.
// Tampered copies of genuine messages must be rejected.
// Prints one JSON line {"ok": true, "checks": [...]} and exits 0, or prints the failure and exits 1.
import assert from "node:assert/strict";
import { createVerify } from "node:crypto";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import {
  ConfirmSubscriptionCommand,
  CreateTopicCommand,
  PublishBatchCommand,
  PublishCommand,
  SNSClient,
  SubscribeCommand,
  UnsubscribeCommand,
} from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { clientConfig, serverEndpoint } from "./server.mjs";

const MessageValidator = createRequire(import.meta.url)("sns-validator");

const endpoint = serverEndpoint("must be the server's https:// public URL");
if (!endpoint.startsWith("https://")) {
  console.error("LOOSELY_ENDPOINT must be the server's https:// public URL");
  process.exit(2);
}
const certHost = new URL(endpoint).host; // 127.0.0.1:PORT
const validator = new MessageValidator(new RegExp(`^${certHost.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`));
const config = clientConfig(endpoint);
const sns = new SNSClient(config);
const sqs = new SQSClient(config);
const suffix = Math.random().toString(36).slice(2, 10);
const checks = [];
const DEADLINE_MS = 10_000;

function validate(message) {
  return new Promise((resolve, reject) => {
    validator.validate(message, (err, validated) => (err ? reject(err) : resolve(validated)));
  });
}

async function validates(message) {
  const validated = await validate(structuredClone(message));
  assert.equal(validated.MessageId, message.MessageId);
}

async function rejected(message, reason) {
  await assert.rejects(validate(structuredClone(message)), (err) => {
    assert.equal(err.message, reason);
    return true;
  });
}

// ---- the subscriber: a plain HTTP server that keeps every POST ----

class Subscriber {
  constructor() {
    this.received = [];
    this.waiters = [];
    this.server = createServer((req, res) => {
      const chunks = [];
      req.on("data", (chunk) => chunks.push(chunk));
      req.on("end", () => {
        res.writeHead(200).end();
        this.received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${this.server.address().port}/`;
  }

  // The first received document that `matches`, taken off the list; waits (with a deadline) for it.
  async take(matches) {
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      const index = this.received.findIndex((r) => matches(r.body));
      if (index >= 0) {
        const [{ headers, body }] = this.received.splice(index, 1);
        assert.equal(headers["x-amz-sns-message-type"], body.Type);
        return body;
      }
      const left = deadline - Date.now();
      assert.ok(left > 0, "the expected SNS delivery never arrived");
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

async function receiveEnvelopes(QueueUrl, count) {
  const envelopes = [];
  const deadline = Date.now() + DEADLINE_MS;
  while (envelopes.length < count && Date.now() < deadline) {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of got.Messages ?? []) {
      envelopes.push(JSON.parse(m.Body));
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  assert.equal(envelopes.length, count);
  return envelopes;
}

async function get(url) {
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return response.text();
}

// The string AWS documents as signed for a Subscription/UnsubscribeConfirmation (Token included).
function documentedConfirmationString(message) {
  const fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];
  return fields.map((name) => `${name}\n${message[name]}\n`).join("");
}

function signatureMatches(message, text, certificate) {
  const verifier = createVerify(message.SignatureVersion === "2" ? "RSA-SHA256" : "RSA-SHA1");
  verifier.update(text, "utf8");
  return verifier.verify(certificate, message.Signature, "base64");
}

// sns-validator 0.3.5 rebuilds an UnsubscribeConfirmation's string to sign from its Notification key list
// (Message, MessageId, Subject, SubscribeURL, Timestamp, TopicArn, Type): Token is left out, while AWS documents
// (and AWS's PHP validator and Ruby SDK verifier use) Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type
// for both confirmation types. So it rejects a correctly signed UnsubscribeConfirmation. Pinned here: the
// validator gets as far as the signature (structure and certificate host pass) and rejects it there; the
// signature verifies over the documented string with the certificate served at SigningCertURL; and it does not
// verify over the validator's string, which is the whole difference.
async function unsubscribeConfirmationChecks(goodbye) {
  assert.ok(goodbye.Token && goodbye.SubscribeURL);
  await rejected(goodbye, "The message signature is invalid.");
  const certificate = await get(goodbye.SigningCertURL);
  const documented = documentedConfirmationString(goodbye);
  assert.ok(signatureMatches(goodbye, documented, certificate), "the documented string does not verify");
  const withoutToken = documented.replace(`Token\n${goodbye.Token}\n`, "");
  assert.notEqual(withoutToken, documented);
  assert.ok(!signatureMatches(goodbye, withoutToken, certificate));
}

// ---- one topic, one SignatureVersion ----

async function topicRound(version, subscriber, subscriberUrl, QueueUrl, QueueArn) {
  const Attributes = version === "2" ? { SignatureVersion: "2" } : {};
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `validator-v${version}-${suffix}`, Attributes }));
  const tag = `v${version}`;

  const { SubscriptionArn } = await sns.send(
    new SubscribeCommand({ TopicArn, Protocol: "http", Endpoint: subscriberUrl, ReturnSubscriptionArn: true }),
  );
  const confirmation = await subscriber.take((m) => m.Type === "SubscriptionConfirmation" && m.TopicArn === TopicArn);
  assert.equal(confirmation.SignatureVersion, version);
  assert.ok(confirmation.SigningCertURL.startsWith(`${endpoint}/`), confirmation.SigningCertURL);
  await validates(confirmation);
  const otherToken = confirmation.Token.replace(/^./, (c) => (c === "0" ? "1" : "0"));
  await rejected({ ...confirmation, Token: otherToken }, "The message signature is invalid.");
  if (version === "1") {
    assert.ok((await get(confirmation.SubscribeURL)).includes(`<SubscriptionArn>${SubscriptionArn}</SubscriptionArn>`));
  } else {
    const confirmed = await sns.send(new ConfirmSubscriptionCommand({ TopicArn, Token: confirmation.Token }));
    assert.equal(confirmed.SubscriptionArn, SubscriptionArn);
  }
  checks.push(`subscription-confirmation-${tag}`);

  await sns.send(new SubscribeCommand({ TopicArn, Protocol: "sqs", Endpoint: QueueArn }));

  const texts = [
    `with subject ${tag} ✓`,
    `no subject ${tag}\nsecond line, "quoted" \\ back`,
    `batch ${tag} one`,
    `batch ${tag} two {"json": [1, 2]}`,
  ];
  await sns.send(new PublishCommand({ TopicArn, Subject: `Subject ${tag} ✓`, Message: texts[0] }));
  await sns.send(new PublishCommand({ TopicArn, Message: texts[1] }));
  const batch = await sns.send(
    new PublishBatchCommand({
      TopicArn,
      PublishBatchRequestEntries: [
        { Id: "one", Message: texts[2], Subject: `Batch ${tag}` },
        { Id: "two", Message: texts[3] },
      ],
    }),
  );
  assert.deepEqual(batch.Failed ?? [], []);

  const notifications = [];
  for (const text of texts) {
    const notification = await subscriber.take((m) => m.Type === "Notification" && m.Message === text);
    assert.equal(notification.SignatureVersion, version);
    await validates(notification);
    notifications.push(notification);
  }
  assert.deepEqual(notifications.map((n) => n.Subject), [`Subject ${tag} ✓`, undefined, `Batch ${tag}`, undefined]);
  checks.push(`notification-${tag}`);

  const envelopes = await receiveEnvelopes(QueueUrl, texts.length);
  assert.deepEqual(envelopes.map((e) => e.Message).sort(), [...texts].sort());
  for (const envelope of envelopes) {
    assert.equal(envelope.Type, "Notification");
    assert.equal(envelope.SignatureVersion, version);
    await validates(envelope);
  }
  checks.push(`sqs-envelope-${tag}`);

  // Tampering with any signed field, or pointing at a certificate elsewhere, must fail validation.
  const genuine = notifications[0];
  await rejected({ ...genuine, Message: `${genuine.Message}!` }, "The message signature is invalid.");
  await rejected({ ...genuine, Subject: "another subject" }, "The message signature is invalid.");
  await rejected({ ...envelopes[0], Message: "forged" }, "The message signature is invalid.");
  await rejected(
    { ...genuine, SigningCertURL: genuine.SigningCertURL.replace("127.0.0.1", "localhost") },
    "The certificate is located on an invalid domain.",
  );
  checks.push(`tampered-rejected-${tag}`);

  if (version === "1") {
    const unsubscribeUrl = new URL(genuine.UnsubscribeURL);
    assert.equal(unsubscribeUrl.searchParams.get("SubscriptionArn"), SubscriptionArn);
    assert.ok((await get(genuine.UnsubscribeURL)).includes("<UnsubscribeResponse"));
  } else {
    await sns.send(new UnsubscribeCommand({ SubscriptionArn }));
  }
  const goodbye = await subscriber.take((m) => m.Type === "UnsubscribeConfirmation" && m.TopicArn === TopicArn);
  assert.equal(goodbye.SignatureVersion, version);
  await unsubscribeConfirmationChecks(goodbye);
  checks.push(`unsubscribe-confirmation-${tag}`);
}

const subscriber = new Subscriber();
try {
  const subscriberUrl = await subscriber.listen();
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `validator-${suffix}` }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
  for (const version of ["1", "2"]) {
    await topicRound(version, subscriber, subscriberUrl, QueueUrl, Attributes.QueueArn);
  }
  console.log(JSON.stringify({ ok: true, checks }));
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exitCode = 1;
} finally {
  await subscriber.close();
  sns.destroy();
  sqs.destroy();
}
