"""E-mail over SMTP (smtplib, with a timeout). Settings: host, port, from, optional username,
password and starttls. The Message-ID is derived from the idempotency key, so a resend after a
crash carries the same id and mail systems that deduplicate by it drop the repeat.

SMTP 4xx answers and connection errors are retried; 5xx answers are permanent."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from siyu.messaging.channels.base import ChannelAdapter, Outbound, ProviderResult

DEFAULT_TIMEOUT_SECONDS = 10.0


class EmailAdapter(ChannelAdapter):
    address_kind = "email"

    def send(self, message: Outbound) -> ProviderResult:
        sender = self.settings["from"]
        email = EmailMessage()
        email["From"] = sender
        email["To"] = message.to
        email["Subject"] = message.subject
        message_id = (
            f"<{message.idempotency_key.replace(':', '.')}@{sender.rpartition('@')[2] or 'siyu'}>"
        )
        email["Message-ID"] = message_id
        email.set_content(message.body)
        timeout = float(self.settings.get("timeout", DEFAULT_TIMEOUT_SECONDS))
        try:
            with smtplib.SMTP(
                self.settings["host"], int(self.settings.get("port", 25)), timeout=timeout
            ) as smtp:
                if self.settings.get("starttls"):
                    smtp.starttls()
                if self.settings.get("username"):
                    smtp.login(self.settings["username"], self.settings.get("password", ""))
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _answer(code, text)
        except smtplib.SMTPResponseException as exc:
            return _answer(exc.smtp_code, exc.smtp_error)
        except TimeoutError:
            return ProviderResult.retry(f"timeout after {timeout:g} s")
        except (OSError, smtplib.SMTPException) as exc:
            return ProviderResult.retry(f"connection error: {exc}")
        return ProviderResult.sent(message_id)


def _answer(code: int, text: bytes | str) -> ProviderResult:
    detail = f"SMTP {code}: {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    return ProviderResult.fail(detail) if code >= 500 else ProviderResult.retry(detail)
