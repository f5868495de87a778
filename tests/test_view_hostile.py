"""Model output in pages (issue 30, items 1, 2 and 6 on the Python side): for hostile strings, keys
and types in any field of any page kind, the site is written whole, its data files are two string
literals that read back as strict JSON, and no page holds a link other than relative/http/https, an
event attribute or a script of its own."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile import (
    check_pages,
    check_site,
    copy_source,
    hostile_value,
    interval_place,
    mutated,
    parquet_rows,
    read_lines,
    utf8,
    write_lines,
    write_parquet,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from viewrun import write_sources

from apigen_rules.fields import text_of
from viewer.cli import build_site
from viewer.kinds import Options, kind_of
from viewer.untrusted import Link, data_json, link, safe_href

# Per page kind: the files an adversary may rewrite, and how each is read ("strings": a dataset's rows,
# which Arrow types by column, so only their strings change).
FILES: dict[str, list[tuple[str, str]]] = {
    "run": [("blueprints.jsonl", "jsonl"), ("rejections.jsonl", "jsonl"), ("trajectories.jsonl", "jsonl"),
            ("failures.jsonl", "jsonl"), ("stats.json", "json"), ("simulate_stats.json", "json"), ("settings.json", "json")],
    "hf": [("data/train-00000-of-00001.parquet", "parquet"), ("export.json", "json")],
    "sharegpt": [("train.json", "strings-array"), ("export.json", "json")],
    "jsonl": [("train.jsonl", "strings"), ("export.json", "json")],
    "tau": [("results.jsonl", "jsonl"), ("summary.json", "json"), ("per_task.json", "json")],
    "bfcl": [("score/verdicts.jsonl", "jsonl"), ("score/scores.json", "json"), ("settings.json", "json"),
             ("BFCL_v4_multiple_result.json", "jsonl")],
    "next-action": [("turns.jsonl", "jsonl"), ("next_action_summary.json", "json")],
}  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sources(tmp_path_factory.mktemp("sources"))


def _rewrite(data: st.DataObject, path: Path, how: str) -> None:
    """Rewrites one record of ``path`` (or the whole document) with hostile values."""
    if how in ("jsonl", "strings"):
        rows = read_lines(path)
        i = data.draw(st.integers(0, len(rows) - 1))
        rows[i] = data.draw(mutated(rows[i], strings_only=how == "strings"))
        if how == "jsonl" and data.draw(st.booleans()):
            rows.append(data.draw(hostile_value))  # a line that is not an object at all
        write_lines(path, rows)
    elif how == "strings-array":
        rows = json.loads(path.read_text(encoding="utf-8"))
        i = data.draw(st.integers(0, len(rows) - 1))
        rows[i] = data.draw(mutated(rows[i], strings_only=True))
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif how == "json":
        document = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(data.draw(mutated(document))), encoding="utf-8")
    elif how == "yaml":
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(data.draw(mutated(document))), encoding="utf-8")  # JSON is YAML
    elif how == "parquet":
        schema, rows = parquet_rows(path.parent.parent)[path]
        i = data.draw(st.integers(0, len(rows) - 1))
        rows[i] = json.loads(
            utf8(json.dumps(data.draw(mutated(rows[i], strings_only=True)), ensure_ascii=False))
        )
        write_parquet(path, schema, rows)


def _build(source: Path) -> tuple[Path, list[str], list[str]]:
    site = source.parent / "site"
    home, built, problems = build_site([source], site, Options(stats=False))
    return site, built, problems


@pytest.mark.parametrize("kind", list(FILES))
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_any_hostile_field_leaves_a_whole_safe_site(sources: dict[str, Path], kind: str, data: st.DataObject):
    with tempfile.TemporaryDirectory(prefix=f"hostile-{kind}-") as folder:
        # A fresh folder name per example: datasets caches a local folder by its name (issue 30, item 11).
        source = copy_source(sources[kind], Path(folder) / f"{kind}-{Path(folder).name}")
        for _ in range(data.draw(st.integers(1, 2))):
            name, how = data.draw(st.sampled_from(FILES[kind]))
            _rewrite(data, source / name, how)
        assert kind_of(source) is not None
        site, built, problems = _build(source)
        assert len(built) == 1 and not problems, problems
        slug = next(p for p in site.iterdir() if p.is_dir() and p.name != "assets")
        values = check_site(site)
        for manifest in (v for k, v in values.items() if k.endswith("/manifest")):
            assert (slug / f"{manifest['name']}.html").is_file()
            rows = [r for k, v in values.items() if k.startswith(f"{manifest['name']}/index/") for r in v]
            assert len(rows) == manifest["total"]
            ids = {
                r["id"] for k, v in values.items() if k.startswith(f"{manifest['name']}/detail/") for r in v
            }
            assert {r[0] for r in rows} == ids  # every listed row opens its record


# ---- item 1: links ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "\x01javascript:x", "data:text/html,x",
     "vbscript:x", "file:///etc/passwd", "//evil.example/x", "\\\\evil.example\\x", "", None, 7, {"href": "x"}],
)  # fmt: skip
def test_a_link_to_anything_but_relative_http_https_is_refused(target: Any):
    assert safe_href(target) is None


@pytest.mark.parametrize(
    "target", ["item.html#c=a&id=b", "../index.html", "https://example.org/l?x=1", "HTTP://x"]
)
def test_relative_http_and_https_links_are_kept(target: str):
    assert safe_href(target) == target


def test_a_link_from_a_file_is_a_link_only_to_a_web_address():
    assert link("https://example.org/l", {"x": 1}) == Link("https://example.org/l", '{"x":1}')
    assert link("LICENSE", "apache-2.0") == "apache-2.0"  # relative to the card, not to the site
    assert link("javascript:alert(1)", "MIT") == "MIT" and link(None, None) == ""


def test_a_licence_mapping_in_export_facts_is_text_not_a_link(sources: dict[str, Path], tmp_path: Path):
    """Item 1: a teacher card's ``license:`` mapping reaches export.json and used to become a link."""
    source = copy_source(sources["hf"], tmp_path / "hf-licence")
    facts = json.loads((source / "export.json").read_text())
    payload = "javascript:window.__pwned=1"
    facts["teachers"] = [
        {"role": "agent", "model": "m1", "license": {"href": payload, "text": "MIT"}},
        {"role": "user", "model": "m2", "license": "apache-2.0", "license_link": payload},
        {"role": "judge", "model": "m3", "license": "other", "license_link": "https://example.org/licence"},
    ]
    (source / "export.json").write_text(json.dumps(facts))
    site, built, problems = _build(source)
    assert built and not problems
    check_pages(site)
    page = next(site.glob("*/index.html")).read_text()
    assert payload not in page.replace("&#34;", '"').split("href=")[-1]
    assert '<a href="https://example.org/licence">other</a>' in page
    assert "apache-2.0" in page and "MIT" in page  # the names are still shown, as text


# ---- item 2: data files ----------------------------------------------------------------------------


def test_lone_surrogates_and_prototype_keys_survive_into_the_data_files(
    sources: dict[str, Path], tmp_path: Path
):
    """Item 2: a lone surrogate used to kill the whole site (UnicodeEncodeError); a ``__proto__`` key in
    an object literal sets a prototype instead of being a field."""
    source = copy_source(sources["run"], tmp_path / "run")
    rows = read_lines(source / "trajectories.jsonl")
    rows[0]["persona"] = "half an emoji \ud83d here"
    rows[0]["scratch"] = {
        "__proto__": {"polluted": "\udfff"},
        "constructor": {"prototype": 1},
        "nan": float("nan"),
    }
    write_lines(source / "trajectories.jsonl", rows)
    site, built, problems = _build(source)
    assert built and not problems, problems
    values = check_site(site)
    records = [r for k, v in values.items() if k.startswith("dialogues/detail/") for r in v]
    first = next(r for r in records if r["id"] == rows[0]["id"])
    assert first["persona"] == "half an emoji \ud83d here"
    assert first["extra"]["scratch"]["__proto__"] == {"polluted": "\udfff"}
    assert (
        first["extra"]["scratch"]["constructor"] == {"prototype": 1}
        and first["extra"]["scratch"]["nan"] == "NaN"
    )
    assert len(list(site.rglob("*.html"))) == 1 + 4  # home, overview, two lists, item


def test_data_json_is_strict_json_for_any_value():
    for value in ({"a": float("inf")}, ["\ud800"], {"__proto__": None}, {"k": {1, 2}}):
        text = data_json(value)
        text.encode("utf-8")
        json.loads(text, parse_constant=lambda name: pytest.fail(name))


@given(hostile_value)
def test_text_of_is_text_for_any_value(value: Any):
    assert isinstance(text_of(value), str)


# ---- intervals: the 95% intervals beside the figures are read as defensively as the figures ------

SUMMARIES = {"tau": "summary.json", "bfcl": "score/scores.json", "next-action": "next_action_summary.json"}


def _section(source: Path, title: str) -> list[list[Any]]:
    """The rows of one table section of a source's overview page."""
    built = kind_of(source).build(source, Options(stats=False))
    return next(s.data["rows"] for s in built.sections if s.title == title)


@pytest.mark.parametrize("kind", list(SUMMARIES))
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_hostile_interval_fields_leave_a_whole_safe_site(
    sources: dict[str, Path], kind: str, data: st.DataObject
):
    with tempfile.TemporaryDirectory(prefix=f"hostile-{kind}-") as folder:
        source = copy_source(sources[kind], Path(folder) / kind)
        path = source / SUMMARIES[kind]
        document = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(data.draw(mutated(document, where=interval_place))), encoding="utf-8")
        site, built, problems = _build(source)
        assert len(built) == 1 and not problems, problems
        check_site(site)


def _tau_no_saved_intervals(summary: dict[str, Any]) -> None:
    for key in ("pass_k", "pass_k_state_changing_only", "pass_k_without_user_error_tasks"):
        summary.pop(f"{key}_interval")


@pytest.mark.parametrize(
    ("kind", "change", "section", "shown"),
    [
        ("tau", lambda s: s.update(pass_k_interval=["not", "a", "mapping"]), "pass^k", "0.000 [0.000, 0.000]"),
        ("tau", lambda s: s.update(pass_k_interval={"1": {"value": "0", "low": None, "high": [1]}}), "pass^k", "0.000 [0.000, 0.000]"),
        ("tau", lambda s: s.update(pass_k_interval={"1": {"value": 0, "low": 0.5, "high": 0.1}}), "pass^k", "0.000 [0.000, 0.000]"),
        ("tau", lambda s: (_tau_no_saved_intervals(s), s.update(noop_gold_tasks=[{"a": 1}], user_error_tasks="w40")),
         "pass^k", "0.000 [0.000, 0.000]"),
        ("bfcl", lambda s: s.update(intervals={"overall": ["x"], "categories": {"multiple": {"value": 1, "low": "a", "high": 1}}}),
         "Categories", "–"),
        ("next-action", lambda s: s["overall"].update(intervals={"decision_accuracy": {"value": 0.3, "low": "x", "high": None}}),
         "Figures", None),
    ],
)  # fmt: skip
def test_an_interval_of_the_wrong_type_is_left_out(
    sources: dict[str, Path], tmp_path: Path, kind: str, change, section: str, shown: str | None
):
    """A summary whose interval fields hold the wrong types used to stop the page (``.items()`` of a
    list, ``100 * "x"``, an unhashable task id); the figure is now shown without its interval, or (τ)
    with the one computed from the run's per-task successes."""
    source = copy_source(sources[kind], tmp_path / kind)
    path = source / SUMMARIES[kind]
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")
    site, built, problems = _build(source)
    assert len(built) == 1 and not problems, problems
    check_site(site)
    rows = _section(source, section)
    if kind == "next-action":
        assert rows[0][3] == "33.3%"  # the decision accuracy, alone
    elif kind == "bfcl":
        assert next(r for r in rows if r[0] == "multiple")[2] == shown
    else:
        assert rows[0][1] == shown


def test_a_summary_claiming_huge_trials_computes_no_interval(sources: dict[str, Path], tmp_path: Path):
    """Intervals missing from a summary are bootstrapped from per-task counts only up to
    ``MAX_COMPUTED_TRIALS`` trials: a count of millions would hold the page (or the report) up."""
    from evaluation.report.collect import MAX_COMPUTED_TRIALS, TauResult

    source = copy_source(sources["tau"], tmp_path / "tau")
    summary = json.loads((source / "summary.json").read_text())
    _tau_no_saved_intervals(summary)
    summary["trials"] = 10**9
    (source / "summary.json").write_text(json.dumps(summary))
    (source / "per_task.json").write_text(json.dumps({"w40": {"trials": 10**9, "successes": 1}}))
    run = TauResult("a", "toy", source, summary)
    assert run.per_task() == {"w40": (1, 10**9)} and run.pass_k_intervals() == {}
    (source / "per_task.json").write_text(
        json.dumps({"w40": {"trials": MAX_COMPUTED_TRIALS, "successes": 1}})
    )
    assert len(run.pass_k_intervals()) == MAX_COMPUTED_TRIALS
