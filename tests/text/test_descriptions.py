"""CuPL-style class descriptions: generation, cleaning, JSON keyed by class name."""
from __future__ import annotations

import json
import warnings

import pytest

from wordsight.text import (
    MissingClassesError,
    clean_description,
    generate_class_descriptions,
    load_class_descriptions,
    save_class_descriptions,
)
from wordsight.text.descriptions import cached_class_descriptions, clean_description  # noqa: F811


class ScriptedLLM:
    """A backend whose answers depend only on (prompt, seed), like a seeded sampler."""

    name = "scripted"

    def __init__(self):
        self.calls = []

    def describe(self):
        return "scripted"

    def generate(self, prompts, max_new_tokens=60, temperature=0.7, seed=0, system=None):
        self.calls.append((list(prompts), seed))
        out = []
        for i, p in enumerate(prompts):
            thing = p.split(" a ", 1)[1].split(" ")[0] if " a " in p else "thing"
            if "shape" in p and seed == 0:  # first round: a useless repeat for every "shape" prompt
                out.append(f"Sure! Here is one: A {thing} is a {thing}. More text.")
            else:
                out.append(f"1. A {thing} seen with variant {seed % 97 + i}. Extra sentence.\nAnother line")
        return out


def test_clean_description_keeps_the_first_sentence():
    assert clean_description("Sure! Here is a description: A sandal is an open shoe. It has straps.") == \
        "A sandal is an open shoe."
    assert clean_description('1. "A bag with two handles." ') == "A bag with two handles."
    assert clean_description("- a boot\nthat covers the ankle") == "a boot"
    assert clean_description("") == ""


def test_generate_asks_every_class_k_times_in_one_batch_and_is_seeded():
    llm = ScriptedLLM()
    d = generate_class_descriptions(["sandal", "bag"], llm, k=3, seed=0)
    assert list(d) == ["sandal", "bag"]
    assert all(len(v) == 3 for v in d.values())
    first_prompts, seed = llm.calls[0]
    assert seed == 0 and len(first_prompts) == 6  # 2 classes x 3, one call
    assert first_prompts[0] == "Describe what a sandal looks like in one short sentence."
    assert "A sandal is a sandal." in d["sandal"]  # cleaned: preamble and the second sentence are gone
    # repeats and short answers are asked again in a second round (with another seed)
    assert len({x.lower() for x in d["bag"]}) == 3
    assert generate_class_descriptions(["sandal", "bag"], ScriptedLLM(), k=3, seed=0) == d
    assert generate_class_descriptions(["sandal", "bag"], ScriptedLLM(), k=3, seed=1) != d


def test_none_backend_gives_empty_lists():
    assert generate_class_descriptions(["a", "b"], "none", k=4) == {"a": [], "b": []}
    assert cached_class_descriptions(["a"], "none") == {"a": []}


def test_generate_through_the_openai_backend(chat_server):
    chat_server.reply = lambda body: "A " + body["messages"][-1]["content"].split(" a ")[1].split(" ")[0] + \
        f" drawn with seed {body['seed']}. Ignored."
    d = generate_class_descriptions(["Sandal", "T-shirt/top"], "openai", k=2, seed=5, base_url=chat_server.url,
                                    model="m", backoff=0.01)
    assert d["Sandal"] == ["A Sandal drawn with seed 500015.", "A Sandal drawn with seed 500016."]
    assert d["T-shirt/top"][0].startswith("A T-shirt drawn with seed")  # asked as "T-shirt or top"
    assert any("T-shirt or top" in b["messages"][-1]["content"] for b in chat_server.requests)


def test_cached_descriptions_are_generated_once(tmp_path, monkeypatch):
    monkeypatch.setenv("WORDSIGHT_CACHE", str(tmp_path))
    llm = ScriptedLLM()
    a = cached_class_descriptions(["sandal", "bag"], llm, k=2, seed=0)
    n = len(llm.calls)
    b = cached_class_descriptions(["sandal", "bag"], llm, k=2, seed=0)
    assert a == b and len(llm.calls) == n
    assert len(list((tmp_path / "class-descriptions").glob("*.json"))) == 1


def test_save_and_load_are_keyed_by_class_name_not_position(tmp_path):
    d = {"Sandal": ["an open shoe"], "Bag": ["a handbag", "a purse"], "Coat": ["a long coat"]}
    path = save_class_descriptions(d, tmp_path / "desc.json")
    assert json.loads(path.read_text()) == d  # plain, human-editable JSON
    # asking in another order returns each class's own texts
    back = load_class_descriptions(path, ["Coat", "Sandal", "Bag"])
    assert list(back) == ["Coat", "Sandal", "Bag"]
    assert back["Bag"] == ["a handbag", "a purse"] and back["Coat"] == ["a long coat"]


def test_load_reports_missing_and_unknown_classes(tmp_path):
    path = tmp_path / "desc.json"
    path.write_text(json.dumps({"Sandal": "an open shoe", "Hat": ["a hat"]}))
    with pytest.raises(MissingClassesError) as e:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_class_descriptions(path, ["Sandal", "Bag", "Coat"])
    assert e.value.missing == ["Bag", "Coat"] and str(path) in str(e.value) and "Bag, Coat" in str(e.value)
    with pytest.warns(UserWarning, match="not among the classes.*Hat"):
        got = load_class_descriptions(path, ["Sandal", "Bag"], missing="empty")
    assert got == {"Sandal": ["an open shoe"], "Bag": []}  # a single string is one description


def test_load_rejects_bad_files_with_the_file_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        load_class_descriptions(bad)
    positional = tmp_path / "list.json"
    positional.write_text(json.dumps([["an open shoe"], ["a bag"]]))
    with pytest.raises(ValueError, match=r"list\.json: .*keyed by class name, not a list"):
        load_class_descriptions(positional)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"Bag": 3}))
    with pytest.raises(ValueError, match=r"wrong\.json: the value for 'Bag' must be a list of strings"):
        load_class_descriptions(wrong)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_class_descriptions(tmp_path / "nope.json")


def test_a_class_read_from_a_folder_matches_its_keys_folder_spelling(tmp_path):
    # "T-shirt/top" cannot be a folder name: the images sit in T-shirt-top/ and the file keeps the real name
    path = tmp_path / "desc.json"
    path.write_text(json.dumps({"T-shirt/top": ["a short-sleeved top"], "T-shirt-top": ["exact key"],
                                "Bag/purse": ["a handbag"], "Coat": "a long coat"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every key is used: no "ignored" warning
        got = load_class_descriptions(path, ["Bag-purse", "Coat", "T-shirt-top", "T-shirt/top"])
    assert got == {"Bag-purse": ["a handbag"], "Coat": ["a long coat"],
                   "T-shirt-top": ["exact key"],  # an exact name wins over a folder spelling
                   "T-shirt/top": ["a short-sleeved top"]}
    with pytest.raises(MissingClassesError) as e:
        load_class_descriptions(path, ["Bag_purse", "Coat"])  # only "/" -> "-" is a folder spelling
    assert e.value.missing == ["Bag_purse"]
