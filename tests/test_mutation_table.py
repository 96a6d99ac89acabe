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
