// The server under test, shared by the check scripts: its endpoint (LOOSELY_ENDPOINT) and the client
// settings every SDK client here uses (test credentials, no retries, so a failure shows at once).

export function serverEndpoint(requirement = "is not set") {
  const endpoint = process.env.LOOSELY_ENDPOINT;
  if (!endpoint) {
    console.error(`LOOSELY_ENDPOINT ${requirement}`);
    process.exit(2);
  }
  return endpoint;
}

export function clientConfig(endpoint) {
  return {
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "secret" },
    maxAttempts: 1,
  };
}
