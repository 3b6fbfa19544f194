"""Register gridiron's blocks from the config and the environment, idempotently.

Blocks (names other tools and the automations rely on):

- `gridiron-smtp`: prefect-email `EmailServerCredentials`, from `GRIDIRON_SMTP_*`;
- `gridiron-email`, `gridiron-escalation-email`: `GridironEmail` to `notification_email` /
  `escalation_email`, sending through `gridiron-smtp`;
- `gridiron-slack`: prefect-slack `SlackWebhook`, from `GRIDIRON_SLACK_WEBHOOK` or `slack_webhook`;
- `gridiron-webhook`, `gridiron-escalation-webhook`: Prefect's `CustomWebhookNotificationBlock`
  posting JSON (`source`, `subject`, `text`), from `GRIDIRON_WEBHOOK_URL` or `webhook_url` /
  `escalation_webhook`;
- `gridiron-cfbd-api-key`: a `Secret` holding `CFBD_API_KEY`, which runs started by a worker read
  when their environment has no key.

Credentials come from the environment; when a variable is absent, a block of that name that already
exists (made in the UI, say) is kept and used. A block is saved only when its content changed, and
the report names blocks, never URLs or passwords.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect.blocks.core import Block
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.blocks.system import Secret
from prefect_email import EmailServerCredentials

from blocks.notifications import GridironEmail
from gridiron.config import PipelineConfig

SMTP = "gridiron-smtp"
EMAIL = "gridiron-email"
SLACK = "gridiron-slack"
WEBHOOK = "gridiron-webhook"
ESCALATION_EMAIL = "gridiron-escalation-email"
ESCALATION_WEBHOOK = "gridiron-escalation-webhook"
CFBD_API_KEY = "gridiron-cfbd-api-key"

SECURITY = {"ssl": "SSL", "starttls": "STARTTLS", "none": "INSECURE"}
WEBHOOK_JSON = {"source": "gridiron", "subject": "{{subject}}", "text": "{{body}}"}


class BlockSetupError(ValueError):
    """A notification setting in the environment is invalid (one line, naming the variable)."""


@dataclass
class Channels:
    """The notification blocks that exist after registration, by audience."""

    alerts: dict[str, UUID] = field(default_factory=dict)  # block name -> block document id
    escalation: dict[str, UUID] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)


def _fingerprint(block: Block) -> str:
    """The block's content, secrets included, without the ids and names a loaded block carries."""
    def content(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: content(v) for k, v in value.items() if not k.startswith("_")}
        return value

    dumped = block.model_dump(mode="json", context={"include_secrets": True})
    return json.dumps(content(dumped), sort_keys=True, default=str)


def _existing(block_type: type[Block], name: str) -> Block | None:
    try:
        return block_type.load(name)
    except ValueError:  # Prefect's answer for "no block document with this name"
        return None


def save_block(block: Block, name: str) -> tuple[str, UUID]:
    """Save `block` as `name` unless an identical one exists; returns (what happened, document id)."""
    current = _existing(type(block), name)
    if current is not None and _fingerprint(current) == _fingerprint(block):
        return "unchanged", current._block_document_id
    document_id = block.save(name, overwrite=True)
    return ("updated" if current is not None else "created"), document_id


def smtp_credentials(env: Mapping[str, str]) -> EmailServerCredentials | None:
    """`EmailServerCredentials` from `GRIDIRON_SMTP_*`, or None when no host is set."""
    host = (env.get("GRIDIRON_SMTP_HOST") or "").strip()
    if not host:
        return None
    security = (env.get("GRIDIRON_SMTP_SECURITY") or "starttls").strip().lower()
    if security not in SECURITY:
        raise BlockSetupError(f"GRIDIRON_SMTP_SECURITY: must be one of ssl, starttls, none (got {security!r})")
    port = (env.get("GRIDIRON_SMTP_PORT") or "").strip()
    if port and not port.isdigit():
        raise BlockSetupError(f"GRIDIRON_SMTP_PORT: must be a port number (got {port!r})")
    return EmailServerCredentials(
        smtp_server=host, smtp_type=SECURITY[security], smtp_port=int(port) if port else None,
        username=env.get("GRIDIRON_SMTP_USERNAME") or None, password=env.get("GRIDIRON_SMTP_PASSWORD") or "",
    )


def _webhook(name: str, url: str) -> CustomWebhookNotificationBlock:
    # The URL is the operator's own (often an internal service), so private addresses are allowed.
    return CustomWebhookNotificationBlock(name=name, url=url, json_data=WEBHOOK_JSON, allow_private_urls=True)


def register_blocks(config: PipelineConfig, env: Mapping[str, str]) -> Channels:
    """Create or update every block the config and environment call for; report one line each."""
    channels = Channels()

    def keep(name: str, block: Block, audience: dict[str, UUID] | None) -> None:
        what, document_id = save_block(block, name)
        channels.report.append(f"block {name}: {what}")
        if audience is not None:
            audience[name] = document_id

    credentials = smtp_credentials(env)
    if credentials is not None:
        keep(SMTP, credentials, None)
    else:
        credentials = _existing(EmailServerCredentials, SMTP)
    email_from = (env.get("GRIDIRON_SMTP_FROM") or "").strip() or None
    for name, recipients, audience in ((EMAIL, config.notification_email, channels.alerts),
                                       (ESCALATION_EMAIL, config.escalation_email, channels.escalation)):
        if not recipients:
            continue
        if credentials is None:
            channels.report.append(
                f"block {name}: not made: email recipients are set but no SMTP server "
                f"(set GRIDIRON_SMTP_HOST or create the {SMTP} block)")
            continue
        keep(name, GridironEmail(credentials=credentials, email_to=recipients, email_from=email_from), audience)

    from prefect_slack import SlackWebhook  # here: a pipeline run imports this module, never Slack's SDK

    urls = (
        (SLACK, env.get("GRIDIRON_SLACK_WEBHOOK") or config.slack_webhook, SlackWebhook, channels.alerts),
        (WEBHOOK, env.get("GRIDIRON_WEBHOOK_URL") or config.webhook_url, CustomWebhookNotificationBlock, channels.alerts),
        (ESCALATION_WEBHOOK, config.escalation_webhook, CustomWebhookNotificationBlock, channels.escalation),
    )
    for name, url, block_type, audience in urls:
        url = (url or "").strip()
        if url:
            keep(name, SlackWebhook(url=url) if block_type is SlackWebhook else _webhook(name, url), audience)
        elif (existing := _existing(block_type, name)) is not None:  # made in the UI: use it
            audience[name] = existing._block_document_id
            channels.report.append(f"block {name}: kept (no URL in the config or environment)")

    api_key = (env.get("CFBD_API_KEY") or "").strip()
    if api_key:
        keep(CFBD_API_KEY, Secret(value=api_key), None)
    return channels


def with_stored_api_key(env: Mapping[str, str]) -> dict[str, str]:
    """`env`, plus the CFBD key saved by `gridiron deploy` when `env` has none (worker-started runs)."""
    env = dict(env)
    if not (env.get("CFBD_API_KEY") or "").strip():
        secret = _existing(Secret, CFBD_API_KEY)
        value = str(secret.get()).strip() if secret is not None else ""
        if value:
            env["CFBD_API_KEY"] = value
    return env
