"""Prefect flows: the parent `ncaa_pipeline` and one module per phase (orchestration only)."""

from flows.backup import backup, restore_warehouse
from flows.collect import collect
from flows.health import health_check
from flows.load import load
from flows.pipeline import ncaa_pipeline
from flows.process import process
from flows.train import train
from flows.validate import validate

__all__ = ["backup", "collect", "health_check", "load", "ncaa_pipeline", "process", "restore_warehouse", "train", "validate"]
