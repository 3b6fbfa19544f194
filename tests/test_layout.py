"""Smoke tests of the project's shape: entrypoints import, the domain package stays Prefect-free."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_every_prefect_yaml_entrypoint_imports_as_the_named_flow():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = set()
    for deployment in spec["deployments"]:
        path, _, attribute = deployment["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        names.add(f"{getattr(module, attribute).name}/{deployment['name']}")
        assert deployment["work_pool"]["name"] == "gridiron-pool"
    assert names == {"ncaa-pipeline/scheduled", "ncaa-pipeline/backfill", "ncaa-health-check/scheduled"}


APPLICATION = ("prefect", "flows", "tasks", "deployments", "blocks", "cli")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (inside functions too), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_the_domain_package_imports_no_prefect_or_application_code_anywhere():
    """Every import of every file of `gridiron`, not only those run at import time. The one file
    allowed to reach the application is `gridiron/__main__.py`, the program `python -m gridiron`."""
    files = sorted(p for p in (REPO / "gridiron").rglob("*.py") if p != REPO / "gridiron" / "__main__.py")
    offending = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in files for line, module in imported_modules(path)
        if module.split(".")[0] in APPLICATION
    ]
    assert offending == []
    assert {"gridiron/tables.py", "gridiron/storage/planned.py", "gridiron/sources/api.py"} <= {
        str(p.relative_to(REPO)) for p in files}  # the walk reaches the subpackages
    assert imported_modules(REPO / "gridiron" / "__main__.py") == [(4, "sys"), (6, "cli")]


def test_the_command_line_starts_flows_and_reads_the_domain_but_never_reaches_into_tasks():
    """The CLI sits on the flows (it starts them) and the domain package (it asks the warehouse);
    a task is the flows' business."""
    offending = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted((REPO / "cli").rglob("*.py")) for line, module in imported_modules(path)
        if module.split(".")[0] == "tasks"
    ]
    assert offending == []


def test_importing_the_domain_package_loads_no_prefect():
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO / "gridiron").rglob("*.py") if p.name != "__main__.py"
    )
    code = f"import sys, {', '.join(modules)}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_run_with_nothing_to_train_or_judge_never_loads_scikit_learn_pandera_or_slack():
    """scikit-learn and scipy cost about 150 MB and a second or more to import, pandera (and the
    pandas it brings) ~0.6 s, Slack's SDK ~0.3 s: the CLI and the flows import them only where a
    model is fitted, a frame judged or a Slack block made (a no-change rerun does none of these)."""
    code = ("import sys, flows, cli.app, tasks.train, tasks.validate, tasks.process, gridiron.model.training, "
            "gridiron.model.registry, gridiron.quality.gate, gridiron.quality.report, blocks.register; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sklearn', 'scipy', 'pandera', 'pandas', 'prefect_slack', 'slack_sdk'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_importing_the_flows_touches_no_files(tmp_path, tmp_path_factory):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    prefect_home = tmp_path_factory.mktemp("prefect-home")  # Prefect makes its own home on import
    code = "import flows, tasks, blocks, deployments; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env={"PATH": "", "HOME": str(tmp_path), "PREFECT_HOME": str(prefect_home),
                               "PYTHONPATH": str(REPO)})
    assert done.stdout.strip() == "ok", done.stderr
    assert list(cwd.iterdir()) == []  # no data dir, no warehouse, no config read at import


def test_the_bundled_snapshot_is_complete_and_attributed():
    root = REPO / "gridiron" / "snapshot"
    for endpoint, seasons in {"games": range(2014, 2024), "lines": range(2014, 2024),
                              "teams_fbs": range(2014, 2024), "stats_season": range(2018, 2024),
                              "talent": range(2015, 2024)}.items():
        assert {p.name for p in (root / endpoint).iterdir()} == {f"{s}.json.gz" for s in seasons}
    assert (root / "teams.json.gz").is_file() and (root / "conferences.json.gz").is_file()
    readme = (root / "README.md").read_text()
    assert "College Football Data API" in readme and "247Sports" in readme


def test_the_quality_modules_form_no_import_circle():
    """The schemas (pandera) and the scores read the dimensions from a pandera-free module; only the
    scores reach the schemas (lazily, when a frame is first judged), never the other way round.
    Each module imports alone, in a fresh interpreter."""
    quality = REPO / "gridiron" / "quality"
    reaches = {path.stem: sorted({m.rsplit(".", 1)[-1] for _, m in imported_modules(path) if m.startswith("gridiron.quality.")})
               for path in sorted(quality.glob("*.py")) if path.stem != "__init__"}
    assert reaches["dimensions"] == [] and reaches["schemas"] == []
    assert reaches["scoring"] == ["dimensions", "schemas"]
    for name in reaches:
        done = subprocess.run([sys.executable, "-c", f"import gridiron.quality.{name}"], capture_output=True,
                              text=True, cwd=REPO)
        assert done.returncode == 0, (name, done.stderr)
