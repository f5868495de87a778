"""The domain registry (entry points and folders), user-domain scaffolding, and `apigen-mt envs`."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from datagen.commands.envs import main
from datagen.envs import registry
from datagen.envs.registry import DomainLoadError, get_domain, list_domains, load_user_domain

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / ".venv" / "bin" / "apigen-mt"


def test_installed_domains_include_the_native_and_tau2_ones():
    assert {"retail", "airline", "bank", "tau2-airline", "tau2-retail", "tau2-telecom"} <= set(list_domains())


def test_get_domain_is_cached_and_unknown_names_are_explained():
    assert get_domain("retail") is get_domain("retail")
    with pytest.raises(DomainLoadError, match="no domain named 'nope'.*installed domains are"):
        get_domain("nope")


def test_broken_entry_point_names_itself_and_the_cause(tmp_path, monkeypatch):
    (tmp_path / "broken_domain_mod.py").write_text("raise RuntimeError('database file is corrupt')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="broken", value="broken_domain_mod:load_domain", group=registry.GROUP)
    with pytest.raises(
        DomainLoadError, match=r"entry point 'broken' \(broken_domain_mod:load_domain\).*corrupt"
    ):
        registry._load_entry_point(ep)


def test_missing_tau2_extra_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "needs_tau2_mod.py").write_text("import tau2.environment\n\ndef load():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "tau2", None)  # as if the extra were not installed
    ep = EntryPoint(name="tau2-x", value="needs_tau2_mod:load", group=registry.GROUP)
    with pytest.raises(DomainLoadError, match=r"optional extra 'tau2' is not installed.*apigen-mt\[tau2\]"):
        registry._load_entry_point(ep)


def test_entry_point_returning_a_non_domain_is_refused(tmp_path, monkeypatch):
    (tmp_path / "not_a_domain_mod.py").write_text("def load():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="odd", value="not_a_domain_mod:load", group=registry.GROUP)
    with pytest.raises(DomainLoadError, match="returned int, expected"):
        registry._load_entry_point(ep)


def test_scaffolded_domain_passes_check_and_loads_by_path(tmp_path, capsys):
    assert main(["new", "library", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "library"
    assert {p.name for p in folder.iterdir()} >= {
        "database.py",
        "tools.py",
        "policy.md",
        "checks.py",
        "tasks.json",
        "examples.json",
    }
    assert main(["check", str(folder)]) == 0
    assert "OK library" in capsys.readouterr().out
    domain = get_domain(folder)
    assert domain.source == "user" and len(domain.gold_tasks) == 2 and domain is get_domain(str(folder))
    assert main(["new", "library", "--out", str(tmp_path)]) == 2  # never overwrites silently
    assert main(["new", "Bad-Name", "--out", str(tmp_path)]) == 2


def test_check_lists_failures_and_exits_nonzero(tmp_path, capsys):
    assert main(["new", "broken", "--out", str(tmp_path)]) == 0
    tasks_file = tmp_path / "broken" / "tasks.json"
    tasks = json.loads(tasks_file.read_text())
    tasks[0]["actions"][1]["arguments"]["ticket_id"] = "T9-9999"
    tasks[1]["outputs"] = ["never said"]
    tasks_file.write_text(json.dumps(tasks))
    assert main(["check", str(tmp_path / "broken")]) == 1
    out = capsys.readouterr().out
    assert "FAIL broken" in out and "T9-9999" in out and "'never said' appears in no observation" in out


def test_user_domain_from_database_json(tmp_path):
    assert main(["new", "generated", "--out", str(tmp_path)]) == 0
    assert main(["new", "frozen", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "frozen"
    (folder / "database.json").write_text(json.dumps(load_user_domain(tmp_path / "generated").database(1)))
    text = (folder / "database.py").read_text()
    (folder / "database.py").write_text(text[: text.index("def build_database")])
    domain = load_user_domain(folder)
    assert domain.database(0) == domain.database(1)
    env = domain.new_env(1)
    assert env.call({"name": "close_ticket", "arguments": {"ticket_id": "T1-0002"}}).ok


def test_incomplete_user_folder_is_explained(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "tools.py").write_text("")
    with pytest.raises(DomainLoadError, match="lacks database.py, policy.md, checks.py.*envs new"):
        load_user_domain(tmp_path / "half")


def test_call_prints_observation_and_diff(capsys):
    domain = get_domain("retail")
    order = next(o for o in domain.database(1)["orders"].values() if o["status"] == "pending")
    args = json.dumps({"order_id": order["order_id"], "reason": "no longer needed"})
    assert main(["call", "retail", "cancel_pending_order", args]) == 0
    out = capsys.readouterr().out
    assert (
        '"status": "cancelled"' in out
        and f'~ orders/{order["order_id"]}.status: "pending" -> "cancelled"' in out
    )
    assert main(["call", "retail", "get_order_details", '{"order_id": "#W0"}', "--seed", "0"]) == 1
    assert "Error: order '#W0' not found" in capsys.readouterr().out
    assert main(["call", "retail", "get_order_details", "{not json"]) == 2


def test_show_prints_tools_checks_and_policy(capsys):
    assert main(["show", "retail"]) == 0
    out = capsys.readouterr().out
    assert "cancel_pending_order" in out and "identity_verified_first" in out and "R11" in out


def test_list_json_through_the_real_command():
    done = subprocess.run(
        [str(CLI), "envs", "list", "--json"], capture_output=True, text=True, timeout=240, check=True
    )
    rows = json.loads(done.stdout)
    by_name = {row["name"]: row for row in rows}
    for row in rows:
        assert set(row) == {"name", "source", "tools", "write_tools", "policy_checks", "gold_tasks"}
        assert all(isinstance(row[k], int) for k in ("tools", "write_tools", "policy_checks", "gold_tasks"))
    retail = by_name["retail"]
    assert retail["source"] == "native" and retail["tools"] >= 12 and retail["gold_tasks"] >= 20
    # every installed domain is either listed or reported as not loaded
    for name in list_domains():
        assert name in by_name or f"domain {name} did not load" in done.stderr


def test_adapter_missing_a_dependency_names_the_extra(tmp_path, monkeypatch):
    # the τ² adapter re-raises a missing module with its own message; the extra is still named
    monkeypatch.setitem(sys.modules, "loguru", None)
    monkeypatch.setattr(registry, "EXTRA_FOR_ADAPTER", {"fake_adapter_pkg": ("tau2", registry.TAU2_HINT)})
    (tmp_path / "fake_adapter_pkg.py").write_text(
        "def load():\n"
        "    try:\n"
        "        import loguru\n"
        "    except ModuleNotFoundError as exc:\n"
        "        raise ModuleNotFoundError('the adapter needs its dependencies') from exc\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="tau2-y", value="fake_adapter_pkg:load", group=registry.GROUP)
    with pytest.raises(DomainLoadError, match=r"tau2-y.*optional extra 'tau2'.*apigen-mt\[tau2\]"):
        registry._load_entry_point(ep)


def test_a_built_domain_is_answered_without_reading_the_entry_points_again(monkeypatch):
    # every Phase 2 attempt and τ trial asks for its domain; reading the entry points costs ~25 ms
    domain = registry.get_domain("retail")

    def unreadable() -> dict:
        raise AssertionError("entry points read again for a domain already built")

    monkeypatch.setattr(registry, "installed_domains", unreadable)
    assert registry.get_domain("retail") is domain
