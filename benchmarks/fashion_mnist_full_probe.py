#!/usr/bin/env python
# Usage: python benchmarks/fashion_mnist_full_probe.py   (writes runs/fm-full, reads/fills the feature cache)
"""Full Fashion-MNIST, EfficientNet-Lite0 image-only logistic head, C chosen on a 10k split of train."""
import time
import numpy as np
from sklearn.linear_model import LogisticRegression
from wordsight.features import extract_features
from wordsight.io.datasets import write_image_folder

t0 = time.time()
train = write_image_folder("runs/fm-full", "train")
test = write_image_folder("runs/fm-full", "test")
tr = extract_features(train, quiet=True)
te = extract_features(test, quiet=True)
print(f"features {len(tr.samples)} / {len(te.samples)} in {time.time()-t0:.0f}s", flush=True)
def prep(x):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x
Xtr, Xte = prep(tr.embeddings), prep(te.embeddings)
mu = Xtr.mean(0); Xtr -= mu; Xte -= mu
ytr, yte = np.array(tr.labels), np.array(te.labels)
rng = np.random.default_rng(0); idx = rng.permutation(len(ytr)); va, fi = idx[:10000], idx[10000:]
best = None
for C in (1.0, 10.0, 100.0):
    t = time.time()
    m = LogisticRegression(C=C, max_iter=300).fit(Xtr[fi] * 10, ytr[fi])
    acc = (m.predict(Xtr[va] * 10) == ytr[va]).mean()
    print(f"C={C}: validation {acc:.4f} ({time.time()-t:.0f}s)", flush=True)
    best = max(best or (acc, C), (acc, C))
m = LogisticRegression(C=best[1], max_iter=300).fit(Xtr * 10, ytr)
print(f"chosen C={best[1]} on the validation split; test accuracy {(m.predict(Xte * 10) == yte).mean():.4f}; total {time.time()-t0:.0f}s")
