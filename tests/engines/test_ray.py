"""The Ray Data engine: same pipeline on an actor pool, same results, resumable Parquet shards."""
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from wordsight.cli import main
from wordsight.estimator.heads import LogisticHead
from wordsight.features import extract_features
from wordsight.features.engines import ATOL, RTOL
from wordsight.features.parquet import write_embeddings

pytest.importorskip("ray")


def test_ray_equals_local(ray_local, mixed_folder):
    local = extract_features(mixed_folder, cache=False, quiet=True)
    remote = extract_features(mixed_folder, engine="ray", cache=False, quiet=True, concurrency=2)
    assert remote.paths == local.paths and remote.labels == local.labels
    np.testing.assert_allclose(remote.embeddings, local.embeddings, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(remote.arrays["logits"], local.arrays["logits"], rtol=RTOL, atol=ATOL)
    assert [f.path for f in remote.failures] == [f.path for f in local.failures]
    assert remote.computed == 9


def test_ray_cli_writes_shards_and_resumes(ray_local, mixed_folder, tmp_path):
    out = tmp_path / "shards"
    rc = main(["embed", str(mixed_folder), "--out", str(out), "--engine", "ray", "--shard-size", "4",
               "--no-cache", "--quiet"])
    assert rc == 0
    files = sorted(os.listdir(out))
    assert len(files) == 3 and all(f.startswith("part-") for f in files)  # 10 files, 4 per shard
    table = pq.read_table(out).to_pandas()
    assert len(table) == 10 and (table.status == "ok").sum() == 9
    assert table[table.status != "ok"].path.str.endswith("broken.jpg").all()
    local = extract_features(mixed_folder, cache=False, quiet=True)
    ok = table[table.status == "ok"].set_index("path")
    emb = np.stack(ok.loc[local.paths].embedding.to_numpy())
    np.testing.assert_allclose(emb, local.embeddings, rtol=RTOL, atol=ATOL)
    assert set(ok.imagenet_top5.iloc[0]) and len(ok.imagenet_top5.iloc[0]) == 5
    # kill a shard: the re-run computes only that shard and leaves the others untouched
    stamps = {f: (out / f).stat().st_mtime_ns for f in files}
    (out / files[1]).unlink()
    stats = write_embeddings(mixed_folder, out, engine="ray", shard_size=4, cache=False, quiet=True)
    assert stats.shards_written == 1 and stats.shards_skipped == 2
    assert stats.computed == 3 and [os.path.basename(f.path) for f in stats.failures] == ["broken.jpg"]
    assert sorted(os.listdir(out)) == files
    assert all((out / f).stat().st_mtime_ns == stamps[f] for f in (files[0], files[2]))
    assert pq.read_table(out).num_rows == 10


def test_predict_batch_callable_locally_and_on_ray(ray_local, fashion_folder, images_and_bad, tmp_path):
    from wordsight.estimator import Classifier
    from wordsight.estimator.batch_predict import PredictBatch, ray_predict

    clf = Classifier(head=LogisticHead(C=1.0)).fit(fashion_folder / "train")
    clf.save(tmp_path / "model")
    images, paths = images_and_bad
    n = len(images)
    want = clf.predict_proba(images)
    out = PredictBatch(tmp_path / "model")({"path": np.array(paths, dtype=object)})
    np.testing.assert_allclose(out["probabilities"][:n], want, atol=1e-5)
    assert list(out["predicted"][:n]) == [str(c) for c in clf.predict(images)]
    assert out["status"][n].startswith("error: ") and np.isnan(out["probabilities"][n]).all()
    cols = list(ray_predict(tmp_path / "model", paths, concurrency=1))
    probs = np.concatenate([c["probabilities"] for c in cols])
    assert [p for c in cols for p in c["path"]] == paths
    np.testing.assert_allclose(probs[:n], want, atol=1e-5)
    out_csv = tmp_path / "pred.csv"
    from wordsight.cli import main

    rc = main(["predict", str(tmp_path / "model"), *paths, "--engine", "ray", "--concurrency", "1",
               "--out", str(out_csv), "--quiet", "--no-cache"])
    assert rc == 0
    import csv

    rows = list(csv.DictReader(out_csv.open()))
    assert [r["predicted"] for r in rows[:n]] == [str(c) for c in clf.predict(images)]
    assert rows[n]["predicted"] == "" and rows[n]["error"]


def test_a_fine_tuned_encoder_embeds_on_ray_actors(ray_local, photo_folder):
    # its weights are registered in the driver only (from its model folder): they must reach the actors
    import torch

    from wordsight.encoders import create
    from wordsight.encoders.finetuned import register_module

    enc = create("efficientnet-lite0").eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in enc.named_parameters():
            if "_blocks.15." in n:
                p.add_(0.05 * torch.randn_like(p))
    name = register_module("efficientnet-lite0", enc)
    local = extract_features(photo_folder, name, cache=False, quiet=True)
    frozen = extract_features(photo_folder, "efficientnet-lite0", cache=False, quiet=True)
    remote = extract_features(photo_folder, name, engine="ray", cache=False, quiet=True, concurrency=1)
    assert remote.paths == local.paths and remote.computed == len(local.paths) > 0
    np.testing.assert_allclose(remote.embeddings, local.embeddings, rtol=RTOL, atol=ATOL)
    assert np.abs(local.embeddings - frozen.embeddings).max() > 100 * ATOL  # the tuned weights were used
