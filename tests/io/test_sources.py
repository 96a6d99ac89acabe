import json

from PIL import Image

from wordsight.io.sources import from_folder, from_manifest, open_source


def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), "blue").save(path)


def test_folder_layout_gives_labels_and_skips_hidden(tmp_path):
    _img(tmp_path / "cat" / "a.png")
    _img(tmp_path / "cat" / ".hidden.png")
    _img(tmp_path / ".git" / "x.png")
    _img(tmp_path / "dög" / "b.jpg")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / "gone.png").symlink_to(tmp_path / "missing.png")
    src = from_folder(tmp_path)
    assert [(s.label, s.path.rsplit("/", 1)[1]) for s in src.samples] == [("cat", "a.png"), ("dög", "b.jpg")]
    assert src.classes == ["cat", "dög"]
    assert [(p.path.endswith("gone.png"), p.reason) for p in src.problems] == [(True, "dangling link")]


def test_flat_folder_is_unlabelled(tmp_path):
    _img(tmp_path / "one.png")
    _img(tmp_path / "two.png")
    assert open_source(tmp_path).labels == [None, None]


def test_csv_and_jsonl_manifests(tmp_path):
    _img(tmp_path / "imgs" / "a.png")
    (tmp_path / "m.csv").write_text("path,label,text\nimgs/a.png,cat,a small cat\n,dog,\n")
    src = from_manifest(tmp_path / "m.csv")
    assert src.samples[0].path == str(tmp_path / "imgs" / "a.png")
    assert (src.samples[0].label, src.samples[0].text) == ("cat", "a small cat")
    assert len(src.problems) == 1 and "no 'path'" in src.problems[0].reason
    lines = [json.dumps({"path": "imgs/a.png", "label": 3}), "{broken"]
    (tmp_path / "m.jsonl").write_text("\n".join(lines))
    src = open_source(tmp_path / "m.jsonl")
    assert src.samples[0].label == "3" and "bad JSON" in src.problems[0].reason
