"""The multiple-instance head's hidden-layer instance scorer (:class:`.mil.MILHead` with
``hidden=H > 0``): each instance scored by one ReLU layer shared over the instances, pooled as the
linear scorer's scores are, plus the same linear global term::

    logits[n, l] = pool_i (relu(T[n, i] . W1.T + c1) . W2[l]) + G[n] . V[l] + b[l]

``W1`` (H, d), ``c1`` (H,), ``W2`` (L, H), ``V`` (L, g), ``b`` (L,): the instance layer's output
bias is folded into ``b`` (a constant added to every instance's score passes through log-sum-exp
and max unchanged). Trained in torch by minibatch AdamW (learning rate 1e-3, weight decay
:data:`WEIGHT_DECAY`, batches of 256, dropout 0.2 on the hidden layer, :data:`EPOCHS` epochs, at
least :data:`MIN_STEPS` updates), binary cross-entropy per label (label sets) or the softmax
cross-entropy (one label per image); seeded and on one torch thread, so a fit is repeatable on CPU.
Why not scikit-learn's ``MLPClassifier``: it scores one row per image, here the layer is shared
over the instances and the scores pooled before the loss.
"""
from __future__ import annotations

import numpy as np

# Chosen on a held-out 20% of the 10,000 TRAINING mosaics (fit on the other 80%) among 20 and 30
# epochs and hidden 512 / 1024 (benchmarks/multilabel_mil.py --hidden; docs/benchmarks.md).
EPOCHS = 30
HIDDEN = 1024  # the hidden width that held-out split chose: MILHead(hidden=HIDDEN)
WEIGHT_DECAY = 1e-4  # AdamW's, fixed (not searched): the lead's scratch run's value
LR, BATCH, DROPOUT = 1e-3, 256, 0.2
MIN_STEPS = 300  # small sets: at least this many updates (as the mlp head)


def numpy_scores(T, G, w, pool: str) -> np.ndarray:
    """(N, L) logits of the module doc's formula, in numpy (``T`` (N, k, d), ``G`` (N, g))."""
    from scipy.special import logsumexp

    h = np.maximum(T @ w["W1"].T + w["c1"], 0)  # (N, k, H)
    s = h @ w["W2"].T  # (N, k, L)
    pooled = logsumexp(s, axis=1) if pool == "lse" else s.max(1)
    return pooled + G @ w["V"].T + w["b"]


def _loss(Y):
    import torch

    if np.asarray(Y).ndim == 2:
        return torch.from_numpy(np.asarray(Y, np.float32)), torch.nn.functional.binary_cross_entropy_with_logits
    return torch.from_numpy(np.asarray(Y, np.int64)), torch.nn.functional.cross_entropy


def fit_mlp_scorer(T, G, Y, n_labels: int, hidden: int, pool: str, seed: int = 0, epochs: int | None = None,
                   on_epoch=None) -> tuple[dict[str, np.ndarray], float]:
    """(``W1``, ``c1``, ``W2``, ``V``, ``b`` (float64) fitted as the module doc says, the final
    training loss: the mean over images of the loss with dropout off, in torch); ``on_epoch(epoch,
    weights)`` (optional) sees the weights after each epoch (the benchmark's held-out choice of epochs);
    ``epochs`` None: :data:`EPOCHS`, read at the call."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        d = T.shape[2]
        inst = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
                                   torch.nn.Linear(hidden, n_labels))
        glob = torch.nn.Linear(G.shape[1], n_labels)
        T_t = torch.from_numpy(np.ascontiguousarray(T, np.float32))
        G_t = torch.from_numpy(np.ascontiguousarray(G, np.float32))
        target, loss_of = _loss(Y)
        opt = torch.optim.AdamW([*inst.parameters(), *glob.parameters()], lr=LR, weight_decay=WEIGHT_DECAY)
        gen = torch.Generator().manual_seed(seed)
        batch = min(BATCH, len(target))
        epochs = max(int(EPOCHS if epochs is None else epochs), -(-MIN_STEPS // -(-len(target) // batch)))

        def forward(rows):
            s = inst(T_t[rows])
            return (torch.logsumexp(s, 1) if pool == "lse" else s.amax(1)) + glob(G_t[rows])

        for epoch in range(epochs):
            inst.train()
            order = torch.randperm(len(target), generator=gen)
            for i in range(0, len(order), batch):
                rows = order[i:i + batch]
                loss = loss_of(forward(rows), target[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if on_epoch is not None:
                on_epoch(epoch + 1, _arrays(inst, glob))
        inst.eval()
        with torch.no_grad():
            final = float(sum(loss_of(forward(rows), target[rows]).item() * len(rows)
                              for rows in torch.arange(len(target)).split(4 * batch)) / len(target))
        return _arrays(inst, glob), final
    finally:
        torch.set_num_threads(threads)


def _arrays(inst, glob) -> dict[str, np.ndarray]:
    def a(t):
        return t.detach().numpy().astype(np.float64)

    first, last = inst[0], inst[3]
    return {"W1": a(first.weight), "c1": a(first.bias), "W2": a(last.weight), "V": a(glob.weight),
            "b": a(glob.bias) + a(last.bias)}
