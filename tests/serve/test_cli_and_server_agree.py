"""One input layer (wordsight.frontend) for the CLI and the server: the same class list,
descriptions and images give the same parsed classes, the same refusal and the same records
through ``wordsight zeroshot`` / ``wordsight predict`` (in-process) and through the real server on
loopback (the fixtures of conftest.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.cli import main

FILES = ("cat", "rocket", "coffee")


def up(images):
    return [("files", (f"{n}.jpg", images[n], "image/jpeg")) for n in FILES]


@pytest.fixture(scope="module")
def photos(images, tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("agree")
    for n in FILES:
        (folder / f"{n}.jpg").write_bytes(images[n])
    return [str(folder / f"{n}.jpg") for n in FILES]


def cli_records(capsys, tmp_path, argv) -> list[dict]:
    out = tmp_path / "records.json"
    out.unlink(missing_ok=True)
    assert main([*argv, "--out", str(out), "--no-cache", "--quiet"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return json.loads(out.read_text())


def cli_error(capsys, argv) -> str:
    """The CLI's one-line refusal, less the command's name."""
    capsys.readouterr()
    assert main([*argv, "--no-cache", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err.split(": error: ", 1)[1]


def same_records(cli: list[dict], server: list[dict]) -> None:
    """Same best class, same classes in the same order, same probabilities, same words."""
    assert [r["predicted"] for r in cli] == [r["predicted"] for r in server]
    for c, s in zip(cli, server):
        assert [t["class"] for t in c["top_k"]] == [t["class"] for t in s["top_k"]]
        np.testing.assert_allclose([t["probability"] for t in c["top_k"]], [t["probability"] for t in s["top_k"]],
                                   rtol=1e-5, atol=1e-6)
        assert c["description"] == s["description"]


@pytest.mark.parametrize("text,classes", [
    (" cat, rocket ,cup of coffee ", ["cat", "rocket", "cup of coffee"]),
    ('["a tabby cat", "a space rocket", "a mug"]', ["a tabby cat", "a space rocket", "a mug"]),
])
def test_a_class_list_gives_the_same_classes_and_records(zs_client, images, photos, tmp_path, capsys, text, classes):
    r = zs_client.post("/v1/zeroshot", files=up(images), data={"classes": text, "top_k": "10"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["classes"] == classes and body["method"] == "names"
    (tmp_path / "classes.txt").write_text("\n".join(classes) + "\n")
    for how in (["--classes", text], ["--classes-file", str(tmp_path / "classes.txt")]):
        records = cli_records(capsys, tmp_path, ["zeroshot", *photos, *how, "--llm", "none", "--top-k", "10"])
        assert sorted(t["class"] for t in records[0]["top_k"]) == sorted(classes)
        same_records(records, body["results"])


@pytest.mark.parametrize("text,reason", [
    ("cat", "at least two classes are needed, got ['cat']"),
    ("cat,,dog", "class name 2 of 3 is empty (separate names by one comma or newline each)"),
    ("cat, dog, cat", "repeated names: cat"),
    ("[1, 2]", "class name 1 of 2 is a number, not a string"),
    ('["a", ["b"]]', "JSON nested deeper than 1 level"),
    ("a," * 1001 + "b", "at most 1000 names of at most 200 characters"),
])
def test_a_bad_class_list_is_refused_with_the_same_reason(zs_client, images, photos, tmp_path, capsys, text, reason):
    r = zs_client.post("/v1/zeroshot", files=up(images), data={"classes": text})
    assert (r.status_code, r.json()["error"], r.json()["detail"]) == (422, "invalid_classes", f"classes: {reason}")
    assert cli_error(capsys, ["zeroshot", *photos, "--classes", text]) == f"--classes: {reason}"
    listed = tmp_path / "classes.json"
    listed.write_text(text)
    assert cli_error(capsys, ["zeroshot", *photos, "--classes-file", str(listed)]) == f"{listed}: {reason}"


DESCRIPTIONS = {"cat": ["a small furry pet with whiskers"], "rocket": "a rocket on its launch pad",
                "cup of coffee": [{"text": "a cup of hot coffee on a saucer", "weight": 1.0}]}


def test_descriptions_give_the_same_records(zs_client, images, photos, tmp_path, capsys):
    r = zs_client.post("/v1/zeroshot", files=up(images),
                       data={"classes": "cat,rocket,cup of coffee", "descriptions": json.dumps(DESCRIPTIONS),
                             "top_k": "3"})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "descriptions"
    path = tmp_path / "descriptions.json"
    path.write_text(json.dumps(DESCRIPTIONS))
    records = cli_records(capsys, tmp_path, ["zeroshot", *photos, "--classes", "cat,rocket,cup of coffee",
                                             "--descriptions", str(path), "--llm", "none", "--top-k", "3"])
    same_records(records, r.json()["results"])
    names = cli_records(capsys, tmp_path, ["zeroshot", *photos, "--classes", "cat,rocket,cup of coffee",
                                           "--llm", "none", "--top-k", "3"])
    assert [t["probability"] for t in names[0]["top_k"]] != [t["probability"] for t in records[0]["top_k"]]


@pytest.mark.parametrize("descriptions,reason", [
    ({"cat": "a pet", "horse": "an animal"}, "not among the classes: horse"),
    ({"cat": [{"text": "a pet", "weight": -1}]}, "a description of 'cat' has weight -1; weights are numbers from 0 "
                                                 "(dropped) up"),
    ({"cat": ["x" * 1001]}, "a description of 'cat' has 1,001 characters, more than the limit of 1000"),
    ({"cat": [f"text {i}" for i in range(257)]}, "'cat' has 257 descriptions, more than the limit of 256"),
    (["a pet", "a dog"], "descriptions must be an object keyed by class name, not a list (a list would tie "
                         "descriptions to class positions)"),
    ('{"cat": "a pet",}', "not valid JSON (Expecting property name enclosed in double quotes at line 1 "
                          "column 17)"),
    ('{"cat": [[["a pet"]]]}', "JSON nested deeper than 3 levels"),
])
def test_bad_descriptions_are_refused_with_the_same_reason(zs_client, images, photos, tmp_path, capsys,
                                                           descriptions, reason):
    text = descriptions if isinstance(descriptions, str) else json.dumps(descriptions)
    r = zs_client.post("/v1/zeroshot", files=up(images), data={"classes": "cat,dog", "descriptions": text})
    assert (r.status_code, r.json()["error"], r.json()["detail"]) == (422, "invalid_descriptions",
                                                                      f"descriptions: {reason}")
    path = tmp_path / "descriptions.json"
    path.write_text(text)
    assert cli_error(capsys, ["zeroshot", *photos, "--classes", "cat,dog", "--descriptions", str(path),
                              "--llm", "none"]) == f"{path}: {reason}"


def test_a_trained_model_gives_the_same_records(client, model_dir, images, photos, tmp_path, capsys):
    r = client.post("/v1/predict", files=up(images), data={"top_k": "3"})
    assert r.status_code == 200, r.text
    server = r.json()["results"]
    assert [x["file"] for x in server] == [f"{n}.jpg" for n in FILES]
    assert [x["predicted"] for x in server] == ["cat", "rocket", "coffee"]
    cli = cli_records(capsys, tmp_path, ["predict", model_dir, *photos, "--top-k", "3"])
    assert [x["path"] for x in cli] == photos and all(len(x["top_k"]) == 3 for x in cli)
    same_records(cli, server)


def test_top_k_below_one_is_refused_with_the_same_reason(client, zs_client, model_dir, images, photos, capsys):
    reason = "must be between 1 and 1,000 (classes listed per image), not 0"  # one rule: frontend.counts
    for c, route, data in ((client, "/v1/predict", {}), (zs_client, "/v1/zeroshot", {"classes": "cat,dog"})):
        r = c.post(route, files=up(images), data={**data, "top_k": "0"})
        assert (r.status_code, r.json()["error"], r.json()["detail"]) == (422, "invalid_top_k", f"top_k {reason}")
    assert cli_error(capsys, ["predict", model_dir, *photos, "--top-k", "0"]) == f"--top-k {reason}"
    assert cli_error(capsys, ["zeroshot", *photos, "--classes", "cat,dog", "--top-k", "0"]) == f"--top-k {reason}"
