"""Near-duplicate groups: reference-centred groups against connected components.

Plants families (an original and three copies, each copy ~0.97 similar to it) among
distinct scenes, plus bursts (sequences of frames, each ~0.97 similar to the previous one,
as a camera that keeps shooting produces: the first and last frame of a burst are far
apart). Builds each image's 10 nearest neighbours by brute force (what the insight stage
stores), then groups them at a threshold with ``similarity.insight.reading``'s own code and
with connected components (the old rule), and prints per rule: groups, the largest group,
the lowest similarity of a member to its group's first image, how many members are
below the threshold to it, and the share of planted copies grouped with their original.

    python bench/duplicates.py --scenes 5000 --families 500 --bursts 50
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assetsite.settings")

DIMS = 384
K = 10


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def near(base: np.ndarray, similarity: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at exactly ``similarity`` to ``base``."""
    noise = rng.normal(size=base.shape)
    noise -= (noise @ base) * base
    return similarity * base + np.sqrt(1 - similarity**2) * unit(noise)


def plant(scenes: int, families: int, bursts: int, burst_length: int, seed: int):
    rng = np.random.default_rng(seed)
    vectors, family, originals = [], [], {}
    for i in range(scenes):
        vectors.append(unit(rng.normal(size=DIMS)))
        family.append(-1 - i)  # its own family: no planted duplicate
    for f in range(families):
        original = unit(rng.normal(size=DIMS))
        vectors.append(original)
        family.append(f)
        first = len(vectors) - 1
        for _ in range(3):
            originals[len(vectors)] = first
            vectors.append(near(original, rng.uniform(0.96, 0.99), rng))
            family.append(f)
    for b in range(bursts):  # frames drift: each true duplicates only of its close frames
        frame = unit(rng.normal(size=DIMS))
        for _ in range(burst_length):
            vectors.append(frame)
            family.append(families + b)
            frame = near(frame, 0.97, rng)
    return np.asarray(vectors, dtype=np.float32), np.asarray(family), originals


def components(ids: np.ndarray, source: np.ndarray, target: np.ndarray) -> list[list[int]]:
    parent = {int(i): int(i) for i in ids}

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(source.tolist(), target.tolist(), strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    out: dict[int, list[int]] = {}
    for node in set(source.tolist()) | set(target.tolist()):
        out.setdefault(root(node), []).append(node)
    return [sorted(group) for group in out.values() if len(group) > 1]


def report(name: str, groups: list[list[int]], vectors: np.ndarray, family: np.ndarray,
           originals: dict[int, int], threshold: float, seconds: float) -> None:
    """Copies found: planted copies in the same group as their original. Below threshold:
    members less similar to their group's first image than the threshold says."""
    where = {row: g for g, group in enumerate(groups) for row in group}
    copies = [row for row in range(len(family)) if row in originals]
    found = sum(1 for row in copies if row in where and where.get(originals[row]) == where[row])
    below = sum(1 for group in groups for row in group[1:]
                if vectors[group[0]] @ vectors[row] < threshold)
    members = sum(len(group) for group in groups)
    lowest = min((float(vectors[group[0]] @ vectors[row]) for group in groups
                  for row in group[1:]), default=1.0)
    print(f"| {name} | {len(groups):,} | {max(map(len, groups), default=0)} | {lowest:.3f} | "
          f"{below:,} of {members:,} | {found / max(len(copies), 1):.3f} | "
          f"{seconds * 1000:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=5000)
    parser.add_argument("--families", type=int, default=500)
    parser.add_argument("--bursts", type=int, default=50)
    parser.add_argument("--burst-length", type=int, default=12)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    import django

    django.setup()
    from similarity.insight.reading import _Graph, _groups

    vectors, family, originals = plant(args.scenes, args.families, args.bursts, args.burst_length, args.seed)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :K]
    source = np.repeat(np.arange(len(vectors)), K)
    target = top.ravel()
    similarity = sims[source, target].astype(np.float32)
    keep = similarity >= 0.5
    both_s = np.concatenate([source[keep], target[keep]]).astype(np.int64)
    both_t = np.concatenate([target[keep], source[keep]]).astype(np.int64)
    both_v = np.concatenate([similarity[keep], similarity[keep]])
    order = np.argsort(-both_v, kind="stable")
    graph = _Graph(both_s[order], both_t[order], both_v[order], [], {})
    ids = np.arange(len(vectors), dtype=np.int64)
    print(f"# {len(vectors):,} images: {args.scenes:,} scenes, {args.families} families of 4, "
          f"{args.bursts} bursts of {args.burst_length} frames; threshold {args.threshold}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("| rule | groups | largest | lowest similarity to the first | members below the "
          "threshold to the first | copies with their original | time |")
    print("|---|---|---|---|---|---|---|")
    started = time.perf_counter()
    prefix = both_v[order] >= args.threshold
    cc = components(ids, both_s[order][prefix], both_t[order][prefix])
    report("connected components (before)", cc, vectors, family, originals, args.threshold,
           time.perf_counter() - started)
    started = time.perf_counter()
    ref = [group.rows for group in _groups(graph, args.threshold, ids)]
    report("reference-centred (now)", ref, vectors, family, originals, args.threshold,
           time.perf_counter() - started)


if __name__ == "__main__":
    main()
