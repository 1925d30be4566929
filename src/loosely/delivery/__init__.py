"""SNS push delivery: signing, transports and the workers that fan out and retry deliveries."""
