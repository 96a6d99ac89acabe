"""The mutation driver's table of equivalent mutants stays true to the source (scripts/mutation.py)."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _driver():
    spec = importlib.util.spec_from_file_location("mutation_driver", ROOT / "scripts" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_equivalent_entry_still_names_code_that_exists():
    assert _driver().stale_entries() == []


def test_an_entry_whose_text_left_the_source_is_reported(tmp_path, monkeypatch):
    driver = _driver()
    pkg = tmp_path / "src" / "wordsight" / "heads"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1e-12\n")
    (tmp_path / "src" / "wordsight" / "b.py").write_text("y = 2\n")
    monkeypatch.setattr(driver, "EQUIVALENT", [
        ("heads/", "1e-12", "2e-12", "in a file of the folder"),
        ("b.py", "y = 2", "y = 3", "in the file"),
        ("b.py", "z = 4", "z = 5", "gone"),
        ("heads/", "w = 0", "", "gone from every file of the folder"),
        ("missing.py", "y = 2", "", "the file itself is gone"),
    ])
    assert driver.stale_entries(tmp_path) == ["b.py: 'z = 4'", "heads/: 'w = 0'", "missing.py: 'y = 2'"]


def test_a_run_limited_to_functions_replaces_only_their_rows_and_says_what_it_covered():
    import argparse

    driver = _driver()
    args = argparse.Namespace(jobs=1, budget_min=1.0, only="heads/mil.py", functions="MILHead.instance_terms",
                              rerun=None, survivors_only=False, merge=True)

    def row(function, line, status):
        return {"file": "estimator/heads/mil.py", "function": function, "line": line, "index": 0,
                "original": "a < b", "mutated": "a <= b", "status": status}

    old = {"rows": [row("MILHead.logits", 1, "failed"), row("MILHead.instance_terms", 2, "passed"),
                    {**row("x", 3, "failed"), "file": "io/images.py"}],
           "runs": [{"command": "earlier", "wall_min": 1.0}],
           "targets": [{"file": "src/wordsight/estimator/heads/mil.py"}]}
    new_rows = [row("MILHead.instance_terms", 2, "failed"), row("MILHead.instance_terms.inner", 4, "passed")]
    new = driver.summarise(new_rows, [t for t in driver.TARGETS if t.file == "estimator/heads/mil.py"], 60, args)
    assert new["targets"][0]["functions_run"] == ["MILHead.instance_terms"]
    out = driver.merged(old, new, new_rows, args)
    rows = {(r["file"], r["line"]): r["status"] for r in out["rows"]}
    assert rows == {("estimator/heads/mil.py", 1): "failed", ("estimator/heads/mil.py", 2): "failed",
                    ("estimator/heads/mil.py", 4): "passed", ("io/images.py", 3): "failed"}
    mil = next(t for t in out["targets"] if t["file"].endswith("heads/mil.py"))
    assert "functions_run" not in mil  # the earlier whole-file rows are kept: all functions covered
    assert (mil["killed"], mil["survived"]) == (2, 1) and len(out["runs"]) == 2
    fresh = driver.merged({"rows": [], "runs": [{"wall_min": 0}], "targets": []}, new, new_rows, args)
    assert next(t for t in fresh["targets"] if t["file"].endswith("heads/mil.py"))["functions_run"] == [
        "MILHead.instance_terms"]
    assert " --functions MILHead.instance_terms" in new["command"]
