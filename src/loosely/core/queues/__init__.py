"""SQS semantics: queues, messages, FIFO rules, visibility, dead letters and move tasks."""
