"""`GridironEmail`: an email notification block, so automations can send email from the server.

Prefect automations only send through notification blocks, and prefect-email's
`EmailServerCredentials` is a credentials block, not a notification block. This block wraps it:
the server loads it (the `prefect.collections` entry point in pyproject.toml makes it importable
there) and sends through the credentials' own `get_server()`, so SSL / STARTTLS / plain SMTP and
login work the way prefect-email does them. It needs the flow's process to be alive for nothing:
the server sends it, so a run whose process was killed is still announced.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

import anyio
from prefect.blocks.abstract import NotificationBlock, NotificationError
from prefect_email import EmailServerCredentials
from pydantic import Field


class GridironEmail(NotificationBlock):
    """Send a notification as a plain-text email to a list of recipients."""

    _block_type_name = "Gridiron Email"
    _block_type_slug = "gridiron-email"
    _description = "Email notifications for gridiron automations, sent through an EmailServerCredentials block."

    credentials: EmailServerCredentials = Field(description="The SMTP server to send through.")
    email_to: list[str] = Field(description="Recipients.")
    email_from: str | None = Field(
        default=None, description="The From address; defaults to the SMTP username, else gridiron@localhost."
    )

    def _message(self, body: str, subject: str | None) -> EmailMessage:
        # Long subjects are not folded (RFC 5322 allows 998 characters): Python folds a subject
        # with a colon in it onto a line of its own, and readers then see a leading space.
        message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
        message["Subject"] = subject or "gridiron notification"
        message["From"] = self.email_from or self.credentials.username or "gridiron@localhost"
        message["To"] = ", ".join(self.email_to)
        message.set_content(body)
        return message

    def _send(self, body: str, subject: str | None) -> None:
        message = self._message(body, subject)
        try:
            with self.credentials.get_server() as server:
                server.send_message(message)
        except Exception as exc:  # the server records the action as failed with this line
            raise NotificationError(log=f"email to {', '.join(self.email_to)} failed: {type(exc).__name__}: {exc}") from exc

    async def notify(self, body: str, subject: str | None = None) -> None:
        await anyio.to_thread.run_sync(self._send, body, subject)
