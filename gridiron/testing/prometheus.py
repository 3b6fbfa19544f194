"""A real Prometheus and Pushgateway for the observability tests: Debian's `prometheus` and
`prometheus-pushgateway` programs, each started from a temporary directory on a free loopback
port (as the PostgreSQL server is), and stopped and removed at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import yaml

from gridiron.testing.servers import answers, free_port, stop_process_group, wait_for

ALERT_RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "alerts.yml"


def prometheus_missing() -> str | None:
    """Why the Prometheus tests cannot run here, or None."""
    missing = [name for name in ("prometheus", "promtool", "prometheus-pushgateway") if shutil.which(name) is None]
    return f"{', '.join(missing)} not installed (apt-get install prometheus prometheus-pushgateway)" if missing else None


class PrometheusServer:
    """Prometheus scraping `targets` (host:port of /metrics endpoints) every second, with
    gridiron's alert rules evaluated every second, its TSDB in a temporary directory."""

    def __init__(self, targets: list[str], *, rules: Path = ALERT_RULES, honor_labels: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets, self.rules, self.honor_labels = targets, rules, honor_labels
        self.dir: Path | None = None
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> PrometheusServer:
        self.dir = Path(tempfile.mkdtemp(prefix="gridiron-prometheus-"))
        shutil.copy(self.rules, self.dir / "alerts.yml")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [{"job_name": "gridiron", "honor_labels": self.honor_labels,
                                "static_configs": [{"targets": self.targets}]}],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = open(self.dir / "prometheus.log", "w")  # noqa: SIM115 - held by the server for its life
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            cwd=self.dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._ready, 60, f"Prometheus on port {self.port} (log: {self.dir / 'prometheus.log'})")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {(self.dir / 'prometheus.log').read_text()[-2000:]}")
        return answers(f"{self.url}/-/ready")

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector (ValueError naming the error when Prometheus refuses it)."""
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        if body.get("status") != "success":
            raise ValueError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        """The single value an instant query gives, or None when it gives no series."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def alerts(self, state: str = "firing") -> list[dict]:
        """The alerts in `state` (firing or pending)."""
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return [alert for alert in body["data"]["alerts"] if alert["state"] == state]

    def scraped_after(self, moment: float) -> bool:
        """Whether every target was last scraped after `moment` (time.time()), and was up."""
        targets = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        return bool(targets) and all(
            t["health"] == "up" and _rfc3339(t["lastScrape"]) > moment for t in targets)

    def __exit__(self, *exc) -> None:
        try:
            if self.process is not None:
                stop_process_group(self.process)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _rfc3339(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Pushgateway:
    """A Prometheus Pushgateway on a free loopback port (no persistence)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Pushgateway:
        self.process = subprocess.Popen(
            ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(self._ready, 60, f"the Pushgateway on port {self.port}")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("prometheus-pushgateway exited")
        return answers(f"{self.url}/-/ready")

    def metrics(self) -> str:
        """What the gateway serves on /metrics now."""
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop_process_group(self.process)

