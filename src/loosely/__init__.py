"""loosely: self-hosted SQS and SNS that unmodified AWS SDKs talk to."""

__version__ = "0.1.0"
__all__ = ["__version__"]
