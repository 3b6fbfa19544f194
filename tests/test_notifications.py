"""The notification pieces on their own: which automations a config makes, the SMTP settings, and
the email block against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from prefect.blocks.abstract import NotificationError
from prefect_email import EmailServerCredentials

from blocks.notifications import GridironEmail
from blocks.register import BlockSetupError, Channels, smtp_credentials
from deployments.automations import wanted_automations
from gridiron.config import parse_config
from gridiron.testing.servers import SMTPServer, free_port

ALERTS = {"gridiron-email": uuid.uuid4(), "gridiron-slack": uuid.uuid4(), "gridiron-webhook": uuid.uuid4()}
ESCALATION = {"gridiron-escalation-webhook": uuid.uuid4()}


def _by_name(config: dict, channels: Channels | None = None) -> dict:
    channels = channels or Channels(alerts=dict(ALERTS), escalation=dict(ESCALATION))
    return {a.name: a for a, _ in wanted_automations(parse_config(config), channels)}


def _actions(automation) -> list[tuple[str, object]]:
    return [(a.type, getattr(a, "block_document_id", None)) for a in automation.actions]


def test_with_notifications_on_each_automation_tells_its_own_audience():
    made = _by_name({"enable_notifications": True, "escalation_failures": 4, "escalation_window": 900,
                     "max_pipeline_duration": 1800})
    assert sorted(made) == [f"gridiron-{n}" for n in sorted(
        ("run-failed", "run-succeeded", "stuck-run", "escalation", "quality-breach", "unhealthy"))]
    alerts = sorted(("send-notification", i) for i in ALERTS.values())
    assert sorted(_actions(made["gridiron-run-failed"])) == alerts
    assert made["gridiron-run-failed"].trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert made["gridiron-run-failed"].trigger.match_related.model_dump() == {
        "prefect.resource.role": "flow", "prefect.resource.name": "ncaa-pipeline"}

    escalation = made["gridiron-escalation"]
    assert _actions(escalation) == [("send-notification", ESCALATION["gridiron-escalation-webhook"])]
    assert (escalation.trigger.threshold, escalation.trigger.within) == (4, timedelta(seconds=900))

    stuck = made["gridiron-stuck-run"]
    assert stuck.trigger.posture == "Proactive" and stuck.trigger.for_each == {"prefect.resource.id"}
    assert stuck.trigger.after == {"prefect.flow-run.Running"} and stuck.trigger.within == timedelta(seconds=1800)
    assert _actions(stuck)[-1] == ("cancel-flow-run", None) and len(stuck.actions) == 4
    assert not made["gridiron-run-succeeded"].enabled  # notify_on_success is off by default


def test_with_notifications_off_only_the_stuck_run_cancel_stays_on():
    made = _by_name({})
    assert [name for name, a in made.items() if a.enabled] == ["gridiron-stuck-run"]
    assert _actions(made["gridiron-stuck-run"]) == [("cancel-flow-run", None)]


def test_each_disabled_automation_says_why():
    def reasons(config: dict, channels: Channels) -> dict:
        return {a.name: why for a, why in wanted_automations(parse_config(config), channels)}

    everything = Channels(alerts=dict(ALERTS), escalation=dict(ESCALATION))
    assert set(reasons({}, everything).values()) == {"enable_notifications is false", None}
    assert reasons({}, everything)["gridiron-stuck-run"] is None
    on = reasons({"enable_notifications": True}, Channels(alerts=dict(ALERTS)))
    assert on["gridiron-run-succeeded"] == "notify_on_success is false"
    assert on["gridiron-escalation"] == "no channel configured for it"
    assert on["gridiron-run-failed"] is None


def test_an_automation_without_a_channel_is_made_but_stays_off():
    made = _by_name({"enable_notifications": True}, Channels(alerts=dict(ALERTS)))
    assert not made["gridiron-escalation"].enabled
    assert _actions(made["gridiron-escalation"]) == [("do-nothing", None)]


@pytest.mark.parametrize("env,message", [
    ({"GRIDIRON_SMTP_SECURITY": "tls"}, "GRIDIRON_SMTP_SECURITY: must be one of ssl, starttls, none (got 'tls')"),
    ({"GRIDIRON_SMTP_PORT": "smtp"}, "GRIDIRON_SMTP_PORT: must be a port number (got 'smtp')"),
])
def test_bad_smtp_settings_name_the_variable(env, message):
    with pytest.raises(BlockSetupError) as error:
        smtp_credentials({"GRIDIRON_SMTP_HOST": "mail.example.com", **env})
    assert str(error.value) == message


def test_smtp_settings_map_onto_prefect_email():
    assert smtp_credentials({}) is None
    plain = smtp_credentials({"GRIDIRON_SMTP_HOST": "127.0.0.1", "GRIDIRON_SMTP_SECURITY": "none", "GRIDIRON_SMTP_PORT": "2525"})
    assert (plain.smtp_type.name, plain.smtp_port, plain.username) == ("INSECURE", 2525, None)
    secure = smtp_credentials({"GRIDIRON_SMTP_HOST": "smtp.example.com", "GRIDIRON_SMTP_USERNAME": "ops",
                               "GRIDIRON_SMTP_PASSWORD": "s3cret"})
    assert (secure.smtp_type.name, secure.username, secure.password.get_secret_value()) == ("STARTTLS", "ops", "s3cret")
    assert "s3cret" not in repr(secure)


def test_the_email_block_sends_through_a_real_smtp_server():
    with SMTPServer() as smtp:
        block = GridironEmail(
            credentials=EmailServerCredentials(smtp_server="127.0.0.1", smtp_port=smtp.port, smtp_type="INSECURE"),
            email_to=["ops@example.com", "data@example.com"], email_from="gridiron@example.com",
        )
        asyncio.run(block.notify("Run: nimble-fox\nState: Failed", subject="gridiron: ncaa-pipeline run nimble-fox is Failed"))
    (message,) = smtp.messages
    assert message["Subject"] == "gridiron: ncaa-pipeline run nimble-fox is Failed"
    assert message["X-Envelope-To"] == "ops@example.com, data@example.com"
    assert message.get_content().splitlines() == ["Run: nimble-fox", "State: Failed"]


def test_an_unreachable_smtp_server_is_a_notification_error_naming_the_recipients():
    block = GridironEmail(
        credentials=EmailServerCredentials(smtp_server="127.0.0.1", smtp_port=free_port(), smtp_type="INSECURE"),
        email_to=["ops@example.com"],
    )
    with pytest.raises(NotificationError) as error:
        asyncio.run(block.notify("body", subject="subject"))
    assert error.value.log.startswith("email to ops@example.com failed: ConnectionRefusedError")
