"""email and email-json deliveries through a configured SMTP relay.

Each attempt opens a connection to the relay (plain, STARTTLS or implicit TLS, with optional login),
sends one message and closes. The standard library's `smtplib` does the talking in a small thread
pool of its own, so a slow relay never blocks the event loop nor takes threads other work needs.

Outcomes: the relay accepting the message is a delivery; an SMTP 5xx reply (unknown mailbox,
message refused) is permanent; a 4xx reply, a timeout or a connection failure is retried, and so is
a refused or missing login (530, 534, 535, 538): that is the relay settings' fault, not the
recipient's, and mail should flow once they are fixed.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from loosely.core.frozen import record
from loosely.core.topics.models import PushDelivery
from loosely.delivery.rendering import DEFAULT_EMAIL_SUBJECT, DISPLAY_NAME_HEADER
from loosely.delivery.transports.base import Attempt

__all__ = ["SMTP_SECURITY_MODES", "SmtpConfig", "SmtpTransport"]

SMTP_SECURITY_MODES = ("none", "starttls", "tls")
DEFAULT_FROM_NAME = "AWS Notifications"


@record
class SmtpConfig:
    host: str
    port: int = 25
    security: str = "none"  # none | starttls | tls (implicit TLS, usually port 465)
    username: str | None = None
    password: str | None = None
    sender: str = "no-reply@sns.localhost"
    timeout_s: float = 30.0
    max_connections: int = 4


class SmtpTransport:
    """Sends mails through one relay, at most ``max_connections`` at a time."""

    def __init__(self, config: SmtpConfig) -> None:
        if config.security not in SMTP_SECURITY_MODES:
            raise ValueError(f"SMTP security must be one of {', '.join(SMTP_SECURITY_MODES)}")
        self.config = config
        self._pool = ThreadPoolExecutor(max_workers=config.max_connections, thread_name_prefix="loosely-smtp")

    def lane(self, push: PushDelivery) -> str:
        return f"smtp://{self.config.host}:{self.config.port}"

    def compose(self, push: PushDelivery) -> EmailMessage:
        """The mail of a delivery: From the topic's display name, To the endpoint, UTF-8 plain text."""
        message = EmailMessage()
        display_name = push.headers.get(DISPLAY_NAME_HEADER) or DEFAULT_FROM_NAME
        message["From"] = formataddr((display_name, self.config.sender))
        message["To"] = push.endpoint
        message["Subject"] = push.subject or DEFAULT_EMAIL_SUBJECT
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2] or None)
        message["x-amz-sns-message-id"] = push.message_id
        if push.topic_arn:
            message["x-amz-sns-topic-arn"] = push.topic_arn
        subtype = "json" if push.protocol == "email-json" else "plain"
        if subtype == "json":
            message.set_content(push.body.encode("utf-8"), maintype="application", subtype="json", cte="8bit")
        else:
            message.set_content(push.body, charset="utf-8")
        return message

    async def send(self, push: PushDelivery) -> Attempt:
        message = self.compose(push)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._send_blocking, message)

    def _send_blocking(self, message: EmailMessage) -> Attempt:
        try:
            with self._connect() as smtp:
                if self.config.username:
                    smtp.login(self.config.username, self.config.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return _by_code(min(codes) if codes else 550, f"recipient refused: {exc.recipients}")
        except smtplib.SMTPResponseException as exc:
            return _by_code(exc.smtp_code, f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}")
        except (smtplib.SMTPException, OSError) as exc:
            return Attempt.retry(f"{type(exc).__name__}: {exc}")
        return Attempt.delivered()

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        if config.security == "tls":
            return smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=ssl.create_default_context()
            )
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        try:
            if config.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        except BaseException:
            smtp.close()
            raise
        return smtp

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_AUTHENTICATION_CODES = frozenset({530, 534, 535, 538})
"""Login required / refused: the relay's configuration is wrong, not the recipient; retried until it is fixed."""


def _by_code(code: int, error: str) -> Attempt:
    if 500 <= code < 600 and code not in _AUTHENTICATION_CODES:
        return Attempt.rejected(error)
    return Attempt.retry(error)


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
