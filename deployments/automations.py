"""The `gridiron-*` automations: who hears what, sent by the Prefect server itself.

Everything here is evaluated and sent server-side, so a run whose process was killed is still
announced (the worker reports it Crashed) and a hung run is caught by the server's clock:

- `gridiron-run-failed`: an `ncaa-pipeline` run Failed or Crashed -> every alert channel;
- `gridiron-run-succeeded`: a run Completed -> alert channels (only with `notify_on_success`);
- `gridiron-stuck-run`: a run Running for `max_pipeline_duration` s without reaching a final state
  (proactive, one bucket per run) -> alert channels, then cancel the run. The cancel stays on when
  notifications are off: it is what keeps a hung run from holding the single-writer slot forever;
- `gridiron-escalation`: `escalation_failures` failed or crashed runs within `escalation_window` s
  -> the escalation channels, once per window;
- `gridiron-quality-breach`: a `gridiron.quality.breach` event -> alert channels;
- `gridiron-unhealthy`: a `gridiron.health.unhealthy` event -> alert channels, at most once per
  `health_alert_interval` s.

`enable_notifications` enables or disables the notifying automations (they exist either way, so
the UI shows what would be sent). The message templates are Jinja, rendered by the server.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.events.actions import CancelFlowRun, DoNothing, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from blocks.register import Channels
from gridiron.config import PipelineConfig
from tasks.health import UNHEALTHY_EVENT
from tasks.validate import BREACH_EVENT

PREFIX = "gridiron-"
PIPELINE_FLOW = "ncaa-pipeline"
FAILED = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
FINAL = {"prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Crashed",
         "prefect.flow-run.Cancelled", "prefect.flow-run.Cancelling"}

_PIPELINE_RUNS = {
    "match": {"prefect.resource.id": "prefect.flow-run.*"},
    "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": PIPELINE_FLOW},
}
_RUN = """\
Flow: {{ flow.name }}
Run: {{ flow_run.name }} ({{ flow_run.id }})
State: {{ flow_run.state.name }}
Message: {{ flow_run.state.message or "(none)" }}
Deployment: {{ deployment.name if deployment else "(run outside a deployment)" }}
Started: {{ flow_run.start_time }}
Link: {{ flow_run|ui_url or "(set PREFECT_UI_URL on the server for links)" }}
"""
FAILED_SUBJECT = "gridiron: {{ flow.name }} run {{ flow_run.name }} is {{ flow_run.state.name }}"
SUCCEEDED_SUBJECT = "gridiron: {{ flow.name }} run {{ flow_run.name }} completed"
STUCK_SUBJECT = "gridiron: {{ flow.name }} run {{ flow_run.name }} is stuck and is being cancelled"
ESCALATION_SUBJECT = "gridiron ESCALATION: {{ flow.name }} failed %(count)d times within %(window)d s"
BREACH_SUBJECT = "gridiron: data quality breach in {{ event.resource.get('gridiron.table') }}"
BREACH_BODY = """\
Table: {{ event.resource.get('gridiron.table') }}
Severity: {{ event.resource.get('gridiron.severity') }} (stage {{ event.resource.get('gridiron.stage') }})
Score: {{ event.payload.score }}
Threshold: {{ event.payload.threshold }}
Failed checks: {{ event.payload.failed_checks | join('; ') }}
Run: {{ event.payload.run_id }}
"""
UNHEALTHY_SUBJECT = "gridiron: unhealthy: {{ event.resource.get('gridiron.checks') }}"
UNHEALTHY_BODY = """\
{% for check in event.payload.failing %}{{ check.name }}: {{ check.detail }}
{% endfor %}"""


def _notify(blocks: dict, subject: str, body: str) -> list[SendNotification]:
    return [SendNotification(block_document_id=document_id, subject=subject, body=body)
            for _, document_id in sorted(blocks.items())]


def wanted_automations(config: PipelineConfig, channels: Channels) -> list[tuple[AutomationCore, str | None]]:
    """The automations this config calls for, with the channels' blocks as their actions, each
    with the reason it is disabled (None when enabled)."""
    on = config.enable_notifications
    off = None if on else "enable_notifications is false"  # why a notifying automation is disabled
    limit = config.max_pipeline_duration
    specs = [
        ("run-failed", "A pipeline run failed or crashed: tell the alert channels.", off,
         EventTrigger(expect=FAILED, posture=Posture.Reactive, threshold=1, **_PIPELINE_RUNS),
         _notify(channels.alerts, FAILED_SUBJECT, _RUN)),
        ("run-succeeded", "A pipeline run completed (notify_on_success).",
         off or (None if config.notify_on_success else "notify_on_success is false"),
         EventTrigger(expect={"prefect.flow-run.Completed"}, posture=Posture.Reactive, threshold=1, **_PIPELINE_RUNS),
         _notify(channels.alerts, SUCCEEDED_SUBJECT, _RUN)),
        ("stuck-run", f"A pipeline run has been Running for more than {limit} s: tell, then cancel it.", None,
         EventTrigger(after={"prefect.flow-run.Running"}, expect=FINAL, for_each={"prefect.resource.id"},
                      posture=Posture.Proactive, threshold=1, within=timedelta(seconds=limit), **_PIPELINE_RUNS),
         (_notify(channels.alerts, STUCK_SUBJECT, f"Running for more than {limit} s (max_pipeline_duration) "
                  "without finishing; gridiron is cancelling it.\n\n" + _RUN) if on else []) + [CancelFlowRun()]),
        ("escalation", f"{config.escalation_failures} failed runs within {config.escalation_window} s: "
         "tell the escalation channels, once per window.", off,
         EventTrigger(expect=FAILED, posture=Posture.Reactive, threshold=config.escalation_failures,
                      within=timedelta(seconds=config.escalation_window), **_PIPELINE_RUNS),
         _notify(channels.escalation,
                 ESCALATION_SUBJECT % {"count": config.escalation_failures, "window": config.escalation_window},
                 f"{config.escalation_failures} or more ncaa-pipeline runs failed or crashed within "
                 f"{config.escalation_window} s. The latest:\n\n" + _RUN)),
        ("quality-breach", "A table's data quality fell below min_data_quality_score.", off,
         EventTrigger(expect={BREACH_EVENT}, match={"prefect.resource.id": "gridiron.quality.*"},
                      posture=Posture.Reactive, threshold=1),
         _notify(channels.alerts, BREACH_SUBJECT, BREACH_BODY)),
        ("unhealthy", "A health check failed (at most once per health_alert_interval).", off,
         EventTrigger(expect={UNHEALTHY_EVENT}, match={"prefect.resource.id": "gridiron.health"},
                      posture=Posture.Reactive, threshold=1,
                      within=timedelta(seconds=config.health_alert_interval)),
         _notify(channels.alerts, UNHEALTHY_SUBJECT,
                 UNHEALTHY_BODY + f"(at most one of these every {config.health_alert_interval} s)\n")),
    ]
    automations = []
    for name, description, disabled_because, trigger, actions in specs:
        disabled_because = disabled_because or (None if actions else "no channel configured for it")
        automations.append((AutomationCore(
            name=PREFIX + name, description=description, enabled=disabled_because is None,
            trigger=trigger, actions=actions or [DoNothing()], tags=["gridiron"],
        ), disabled_because))
    return automations


def _comparable(automation) -> dict:
    """What an automation does, without the ids the server or pydantic gave it."""
    dumped = AutomationCore.model_validate(automation.model_dump()).model_dump(mode="json")
    dumped["trigger"].pop("id", None)  # a fresh uuid each time one is built
    for key in ("after", "expect", "for_each"):  # sets: their order differs between processes
        dumped["trigger"][key] = sorted(dumped["trigger"].get(key) or [])
    return dumped


def apply_automations(config: PipelineConfig, channels: Channels) -> list[str]:
    """Create, update or remove `gridiron-*` automations to match the config; one line each."""
    wanted = {a.name: (a, why) for a, why in wanted_automations(config, channels)}
    report = []
    with get_client(sync_client=True) as client:
        existing: dict[str, list] = {}
        for automation in client.read_automations():
            if automation.name.startswith(PREFIX):
                existing.setdefault(automation.name, []).append(automation)
        for name, (automation, disabled_because) in wanted.items():
            current, *extra = existing.pop(name, [None])
            for duplicate in extra:  # e.g. made twice by hand: keep one
                client.delete_automation(duplicate.id)
            state = f"disabled ({disabled_because})" if disabled_because else "enabled"
            if current is None:
                client.create_automation(automation)
                report.append(f"automation {name}: created, {state}")
            elif _comparable(current) != _comparable(automation):
                # The client sends only fields marked as set: an action whose only field is its
                # default `type` (CancelFlowRun) would arrive as {} and be stored as do-nothing.
                # A model validated from its full dump has every field set (but owner_resource,
                # which the server refuses on update).
                complete = AutomationCore.model_validate(automation.model_dump(mode="json", exclude={"owner_resource"}))
                client.update_automation(current.id, complete)
                report.append(f"automation {name}: updated, {state}")
            else:
                report.append(f"automation {name}: unchanged, {state}")
        for name, stale in sorted(existing.items()):  # ours once, no longer made
            for automation in stale:
                client.delete_automation(automation.id)
            report.append(f"automation {name}: removed")
    return report

