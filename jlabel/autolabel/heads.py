"""Learners on frozen embeddings or fixed views: a linear head and a similarity-weighted vote over
the labeled points (inductive: a point's scores depend on the labels and itself only), and label
spreading over a kNN graph (semi-supervised: the graph spans the unlabeled points too)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def standardise(train: np.ndarray, *others: np.ndarray) -> list[torch.Tensor]:
    """L2-normalise rows, then centre/scale with ``train``'s statistics."""

    def norm(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.asarray(a, np.float32))
        return F.normalize(t, dim=1)

    base = norm(train)
    mean, std = base.mean(0, keepdim=True), base.std(0, keepdim=True).clamp_min(1e-4)
    return [(base - mean) / std, *[(norm(o) - mean) / std for o in others]]


def linear_head(
    x: np.ndarray,
    y: np.ndarray,
    n_out: int,
    multi_label: bool,
    predict: list[np.ndarray],
    *,
    l2: float = 1e-2,
    steps: int = 100,
) -> list[np.ndarray]:
    """Fit a (multinomial or one-vs-rest) logistic regression on ``x``; probabilities for each
    array in ``predict``."""
    xt, *others = standardise(x, *predict)
    w = torch.zeros(xt.shape[1], n_out, requires_grad=True)
    b = torch.zeros(n_out, requires_grad=True)
    yt = torch.from_numpy(y)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = xt @ w + b
        if multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, yt.float())
        else:
            loss = F.cross_entropy(logits, yt)
        loss = loss + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        act = torch.sigmoid if multi_label else (lambda z: torch.softmax(z, dim=1))
        return [act(o @ w + b).numpy() for o in others]


def vote(
    x_labeled: np.ndarray | torch.Tensor,
    y: np.ndarray,
    x_query: np.ndarray | torch.Tensor,
    n_out: int,
    multi_label: bool,
    *,
    temperature: float = 0.1,
) -> np.ndarray:
    """Similarity-weighted vote of the labeled points: class probabilities ``[Q, C]`` for each
    query row, ``p_c = sum_i w_i [y_i = c] / sum_i w_i`` with ``w_i = exp(cos_i / temperature)``
    (per label for multi-label). Rows are L2-normalised, centred on the labeled mean and
    normalised again, so only the labels and the query itself matter."""

    def arr(a: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = a.detach().cpu().float() if isinstance(a, torch.Tensor) else torch.from_numpy(a)
        return F.normalize(t.float(), dim=1)

    lab, query = arr(x_labeled), arr(x_query)
    mean = lab.mean(0, keepdim=True)
    lab, query = F.normalize(lab - mean, dim=1), F.normalize(query - mean, dim=1)
    if multi_label:
        onehot = torch.from_numpy(np.asarray(y, np.float32))
    else:
        onehot = F.one_hot(torch.from_numpy(np.asarray(y, np.int64)), n_out).float()
    out = []
    for start in range(0, len(query), 1024):
        w = torch.softmax(query[start : start + 1024] @ lab.T / temperature, dim=1)
        out.append(w @ onehot)
    return torch.cat(out).numpy() if out else np.zeros((0, n_out), np.float32)


EXACT_KNN_MAX = 20_000
"""Up to this many points the kNN graph is exact (blockwise products: as fast as an index
there); above it an approximate index (faiss HNSW) keeps the cost about linear in the points."""


HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 16, 100, 128
"""Index parameters: a wide construction search keeps tight, far-apart clusters linked
(with 40 a point of such a set got 10 neighbours from another cluster)."""


def _exact_neighbours(a: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(a)
    sims, idxs = [], []
    for start in range(0, n, 1024):
        sim = a[start : start + 1024] @ a.T
        sim[torch.arange(len(sim)), torch.arange(start, start + len(sim))] = -1
        top, idx = sim.topk(k, dim=1)
        sims.append(top)
        idxs.append(idx)
    return torch.cat(sims), torch.cat(idxs)


def _approximate_neighbours(a: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inner-product neighbours of unit rows from a faiss HNSW index (recall@10 about .99
    on image views at 50k points, see ``bench/scale.py``), self matches dropped. A search
    that did not find the point itself got lost in the graph (it happens between tight,
    far-apart clusters): those rows are searched exactly (few rows: linear cost)."""
    import faiss

    x = np.ascontiguousarray(a.numpy(), dtype=np.float32)
    faiss.omp_set_num_threads(max(1, torch.get_num_threads()))
    index = faiss.IndexHNSWFlat(x.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(x)
    index.hnsw.efSearch = HNSW_EF_SEARCH
    sim, idx = index.search(x, k + 1)
    del index
    rows = np.arange(len(x))[:, None]
    own = idx == rows
    found = own.any(axis=1)
    keep = ~own  # drop the self match, or (not found) the last of the k + 1
    keep[~found, -1] = False
    idx = idx[keep].reshape(len(x), k).astype(np.int64)
    sim = sim[keep].reshape(len(x), k)
    out_sim, out_idx = torch.from_numpy(sim), torch.from_numpy(idx)
    lost = np.flatnonzero(~found | (idx < 0).any(axis=1))
    for start in range(0, len(lost), 1024):
        part = torch.from_numpy(lost[start : start + 1024])
        s = a[part] @ a.T
        s[torch.arange(len(part)), part] = -1
        top, nearest = s.topk(k, dim=1)
        out_sim[part], out_idx[part] = top, nearest
    return out_sim, out_idx


def neighbours(
    x: np.ndarray | torch.Tensor, *, k: int = 10, exact: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and indices ``[N, k]`` of each row's ``k`` nearest other rows of
    ``x`` (rows L2-normalised here); exact up to :data:`EXACT_KNN_MAX` rows (or when
    ``exact``), else approximate (faiss; exact again when faiss is not installed)."""
    t = x.detach().cpu().float() if isinstance(x, torch.Tensor) else torch.from_numpy(x).float()
    a = F.normalize(t, dim=1)
    k = min(k, len(a) - 1)
    if exact is None:
        exact = len(a) <= EXACT_KNN_MAX
    if not exact:
        try:
            return _approximate_neighbours(a, k)
        except ImportError:  # faiss-cpu missing: exact, quadratic but right
            pass
    return _exact_neighbours(a, k)


def knn_graph(
    x: np.ndarray | torch.Tensor, *, k: int = 10, exact: bool | None = None
) -> torch.Tensor:
    """Symmetric, degree-normalised cosine kNN graph ``D^-1/2 W D^-1/2`` (sparse ``[N, N]``) of
    the rows of ``x`` (standardised first); edge weights are similarities cubed. Neighbours
    as in :func:`neighbours` (approximate above :data:`EXACT_KNN_MAX` rows)."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
    allx = standardise(arr)[0]
    n = len(allx)
    top, idx = neighbours(allx, k=k, exact=exact)
    k = top.shape[1]
    r = torch.arange(n).repeat_interleave(k)
    c, v = idx.flatten(), top.clamp_min(0).flatten() ** 3
    w = torch.sparse_coo_tensor(torch.stack([r, c]), v, (n, n), check_invariants=True)
    w = (w + w.t()).coalesce()
    dinv = torch.sparse.sum(w, dim=1).to_dense().clamp_min(1e-8).rsqrt()
    i = w.indices()
    vals = w.values() * dinv[i[0]] * dinv[i[1]]
    return torch.sparse_coo_tensor(i, vals, (n, n), check_invariants=False).coalesce()


def spread(
    graph: torch.Tensor,
    seeds: np.ndarray,
    y: np.ndarray,
    n_out: int,
    multi_label: bool,
    *,
    alpha: float = 0.9,
    iters: int = 30,
) -> np.ndarray:
    """Label spreading of the labels ``y`` of nodes ``seeds`` over ``graph`` (from
    :func:`knn_graph`); class probabilities ``[N, C]`` for every node (per label for
    multi-label; single-label scores are scaled by the largest one among unseeded nodes)."""
    n = graph.shape[0]
    start = torch.zeros(n, n_out)
    idx = torch.from_numpy(np.asarray(seeds, np.int64))
    if multi_label:
        start[idx] = torch.from_numpy(np.asarray(y, np.float32)) * 2 - 1
    else:
        start[idx, torch.from_numpy(np.asarray(y, np.int64))] = 1.0
    f = start.clone()
    for _ in range(iters):
        f = alpha * torch.sparse.mm(graph, f) + (1 - alpha) * start
    if multi_label:
        return torch.sigmoid(f * 8).numpy()
    free = torch.ones(n, dtype=torch.bool)
    free[idx] = False
    scale = (f[free] if bool(free.any()) else f).abs().max().clamp_min(1e-8)
    return torch.softmax(f / scale * 12, dim=1).numpy()


def propagate(
    x_labeled: np.ndarray,
    y: np.ndarray,
    x_unlabeled: np.ndarray,
    n_out: int,
    multi_label: bool,
    *,
    k: int = 10,
    alpha: float = 0.9,
    iters: int = 30,
) -> np.ndarray:
    """Label spreading over a cosine kNN graph of all points; class scores ``[U, C]`` for the
    unlabeled points, normalised to probabilities (per label for multi-label)."""
    graph = knn_graph(np.concatenate([x_labeled, x_unlabeled]), k=k)
    probs = spread(
        graph, np.arange(len(x_labeled)), y, n_out, multi_label, alpha=alpha, iters=iters
    )
    return probs[len(x_labeled) :]
