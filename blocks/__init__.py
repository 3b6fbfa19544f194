"""Prefect block definitions and their registration.

`notifications.GridironEmail` is an email notification block (automations can only send through
notification blocks); `register.register_blocks` saves the SMTP credentials, the email / Slack /
webhook channels and the CFBD key as a Secret from the config and environment, idempotently.
The pipeline itself needs no block to run.
"""
