"""Key indexes of a bank: per (key space, stream), sealed segment files written once, plus an open tail in memory.

    index/<space>/<stream>/<seg id>.faiss   sealed segment: IndexIDMap2 over IVF-SQ8 (ANN, ≥ ANN_MIN keys) or
                                              Flat (exact, smaller); memory-mapped, loaded on first search
    SQLite keys(memory_id, space, vec, seg)   every key, once, full precision: the source of truth
    SQLite segments                           one row per sealed file

A key is acknowledged with its memory (SQLite commit). It starts in its stream's tail: an exact in-memory index
rebuilt on open from the keys whose `seg` is NULL (at most SEAL_AT per space and stream, so opening a bank costs
the same after a day or a year). A tail that reaches SEAL_AT keys is sealed: its segment file is built and written
(temp + fsync + rename) with no lock held, then one transaction records the segment and marks its keys. A crash
before that commit leaves an orphan file, removed on the next open; after it, the segment is complete.

Search: exact over the tails; approximate (IVF, SQ8 codes) over segments, then every candidate is rescored with
its exact key from SQLite, which also drops deleted memories. With a GPU (memory.gpu) every tail and segment is
scored on the device instead (fp16 keys, one top-k), with the same exact rescoring. A segment whose keys are all gone (retention) is
deleted, which reclaims its disk. A missing or unreadable segment is rebuilt from SQLite.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import numpy as np

SEAL_AT = 8192          # keys per (space, stream) tail before it is sealed into a segment
ANN_MIN = 4096          # a segment this large gets an IVF index; smaller ones stay exact (Flat)
NPROBE = 8              # IVF lists probed per segment (16 -> 8 at 10^6: recall@10 0.992 -> 0.991, CPU time / 1.8)
SLACK = 16              # extra candidates per segment beyond k, rescored exactly
DEVICE_SYNC_ROWS = 200_000   # segment keys copied to the GPU within a search; more go in the background (CPU serves)
FANIN = 4               # this many segments of one size (level) of a stream merge into one 4× larger


def level(n: int) -> int:
    """A segment's size class: 0 for a sealed tail (SEAL_AT keys), 1 for 4 of those merged, and so on."""
    import math

    return max(0, int(round(math.log(max(1.0, n / SEAL_AT), FANIN))))


def _single_threaded_search() -> None:
    """One query at a time gains nothing from OpenMP, and its spinning threads cost 5x under load on a small machine;
    concurrent askers run in parallel threads instead. VIGIL_FAISS_THREADS overrides."""
    try:
        import faiss

        faiss.omp_set_num_threads(int(os.environ.get("VIGIL_FAISS_THREADS", "1")))
    except Exception:  # noqa: BLE001 - faiss missing: the bank reports it when opened
        pass


_single_threaded_search()
TAIL_CACHE = "tails.npz"


def safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", s)[:80] or "x"


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build_index(ids: np.ndarray, vecs: np.ndarray):
    """[n] int64 ids, [n, d] normalized float32 keys -> a FAISS index (IVF-SQ8 when n ≥ ANN_MIN, else Flat)."""
    import faiss

    n, d = vecs.shape
    if n >= ANN_MIN:
        nlist = max(16, int(np.sqrt(n)))
        ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT)
        sample = vecs[np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)]
        ivf.cp.min_points_per_centroid = 1  # a small segment trains on what it has, quietly
        ivf.train(sample)
        index = faiss.IndexIDMap2(ivf)
    else:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    index.add_with_ids(vecs, ids)
    return index


@dataclass
class Segment:
    seg: int
    space: str
    stream: str
    file: str              # relative to the bank
    n: int
    dim: int
    t0: float
    t1: float
    _index: object = field(default=None, repr=False)


class KeyIndex:
    """All key spaces of one bank. Thread-safe: tails are guarded by one short lock; sealed segments are
    immutable. SQLite access goes through the callbacks the bank gives (a read connection per thread)."""

    def __init__(self, root: str, readonly: bool):
        self.root = root
        self.readonly = readonly
        self.lock = threading.Lock()
        self.tails: dict[tuple[str, str], object] = {}     # (space, stream) -> IndexIDMap2(Flat)
        self.segments: dict[str, list[Segment]] = {}        # space -> segments
        self.dims: dict[str, int] = {}
        self.repairs: list[str] = []
        self.versions: dict[tuple[str, str], int] = {}      # (space, stream) -> changes of its tail (device copies)
        self.device = None                                  # memory.gpu.DeviceKeys once chosen; see use_device()
        self._device_chosen = False

    def use_device(self, device: Optional[str]) -> None:
        """Search on this torch device ("cuda", or "cpu" for tests of that path) or, with None, with FAISS on the CPU."""
        from .gpu import DeviceKeys

        self.device = DeviceKeys(device) if device else None
        self._device_chosen = True

    def _changed(self, space: str, stream: str) -> None:
        self.versions[(space, stream)] = self.versions.get((space, stream), 0) + 1

    # ---- state -----------------------------------------------------------------------------------------------
    def spaces(self) -> list[str]:
        with self.lock:
            have = {s for (s, _), t in self.tails.items() if t.ntotal} | {s for s, v in self.segments.items() if v}
        return sorted(have)

    def dim(self, space: str) -> Optional[int]:
        return self.dims.get(space)

    def _tail(self, space: str, stream: str, dim: int):
        import faiss

        t = self.tails.get((space, stream))
        if t is None:
            t = self.tails[(space, stream)] = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        return t

    def add(self, space: str, stream: str, ids: np.ndarray, vecs: np.ndarray) -> None:
        with self.lock:
            self.dims.setdefault(space, vecs.shape[1])
            self._tail(space, stream, vecs.shape[1]).add_with_ids(vecs, ids)
            self._changed(space, stream)

    def remove(self, ids: Iterable[int]) -> None:
        arr = np.asarray(list(ids), np.int64)
        if arr.size == 0:
            return
        with self.lock:
            for name, t in self.tails.items():
                if t.ntotal and t.remove_ids(arr):
                    self._changed(*name)

    def replace(self, space: str, stream: str, mid: int, vec: np.ndarray) -> None:
        """A memory's key changed (late evidence): the tail holds the new one; a segment's old code is rescored
        with the SQLite key anyway, so it cannot rank with the stale vector."""
        with self.lock:
            t = self._tail(space, stream, vec.size)
            t.remove_ids(np.array([mid], np.int64))
            t.add_with_ids(vec[None], np.array([mid], np.int64))
            self.dims.setdefault(space, vec.size)
            self._changed(space, stream)

    def save_tails(self) -> None:
        """Write every tail's ids, streams and keys to one cache file (atomic) so the next open maps it instead of
        reading the keys row by row from SQLite. Only a clean close writes it; the next open checks it against
        SQLite and ignores it when the two disagree."""
        import faiss

        with self.lock:
            parts = [(sp, st, faiss.vector_to_array(t.id_map).astype(np.int64),
                      t.index.reconstruct_n(0, t.ntotal))
                     for (sp, st), t in self.tails.items() if t.ntotal]
        p = os.path.join(self.root, "index", TAIL_CACHE)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        names = sorted({(sp, st) for sp, st, *_ in parts})
        arrays = {}
        for i, (sp, st, ids, vecs) in enumerate(parts):
            arrays[f"ids{i}"], arrays[f"vecs{i}"] = ids, vecs
            arrays[f"name{i}"] = np.array([names.index((sp, st))])
        with open(p + ".tmp", "wb") as f:
            np.savez(f, n=np.array([len(parts)]), names=np.array(["\x00".join(n) for n in names] or [""]), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(p + ".tmp", p)

    def load_tail_cache(self, expect: dict[str, set]) -> bool:
        """Load the tails from the cache when it holds exactly the ids SQLite says are unsealed ({space: ids})."""
        p = os.path.join(self.root, "index", TAIL_CACHE)
        if not os.path.exists(p):
            return False
        try:
            z = np.load(p, allow_pickle=False)
            names = [tuple(x.split("\x00")) for x in z["names"].tolist()]
            got: dict[str, set] = {}
            parts = []
            for i in range(int(z["n"][0])):
                sp, st = names[int(z[f"name{i}"][0])]
                ids, vecs = z[f"ids{i}"], z[f"vecs{i}"]
                got.setdefault(sp, set()).update(ids.tolist())
                parts.append((sp, st, ids, vecs))
        except (OSError, ValueError, KeyError, IndexError):
            return False
        if got != {k: v for k, v in expect.items() if v}:
            return False
        for sp, st, ids, vecs in parts:
            self.add(sp, st, ids.astype(np.int64), vecs.astype(np.float32))
        return True

    def tail_size(self, space: str, stream: str) -> int:
        with self.lock:
            t = self.tails.get((space, stream))
            return int(t.ntotal) if t is not None else 0

    # ---- segments ---------------------------------------------------------------------------------------------
    def seg_path(self, space: str, stream: str, seg: int) -> str:
        return os.path.join("index", safe_name(space), safe_name(stream), f"{seg:08d}.faiss")

    def write_segment(self, rel: str, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Build and durably write one segment file (no lock held: training takes about a second)."""
        import faiss

        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        tmp = p + ".tmp"
        faiss.write_index(build_index(ids, vecs), tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
        fsync_dir(os.path.dirname(p))

    def attach(self, seg: Segment, sealed_ids: np.ndarray) -> None:
        """After the sealing commit: the segment serves those keys, the tail drops them."""
        with self.lock:
            self.segments.setdefault(seg.space, []).append(seg)
            self.dims.setdefault(seg.space, seg.dim)
            t = self.tails.get((seg.space, seg.stream))
            if t is not None and t.ntotal:
                t.remove_ids(sealed_ids)
                self._changed(seg.space, seg.stream)

    def detach(self, seg_ids: set) -> list[Segment]:
        with self.lock:
            gone = []
            for space, segs in self.segments.items():
                gone += [s for s in segs if s.seg in seg_ids]
                self.segments[space] = [s for s in segs if s.seg not in seg_ids]
        if self.device is not None:
            self.device.drop([("seg", s.seg) for s in gone])
        return gone

    def _load(self, s: Segment, rebuild: Callable[[Segment], None]):
        import faiss

        if s._index is None:
            p = os.path.join(self.root, s.file)
            for attempt in range(2):
                for flags in (faiss.IO_FLAG_MMAP, 0):  # mapped when the layout allows, read otherwise
                    try:
                        s._index = faiss.read_index(p, flags)
                        return s._index
                    except RuntimeError:
                        continue
                if attempt == 0:
                    rebuild(s)  # missing or corrupt: rebuilt from SQLite (read-only banks: in memory)
                    if s._index is not None:
                        return s._index
            raise RuntimeError(f"key segment {s.file} cannot be read or rebuilt")
        return s._index

    # ---- search -----------------------------------------------------------------------------------------------
    def search(self, q: np.ndarray, space: str, k: int, streams: Optional[set], t_range: Optional[tuple],
               allowed: Optional[np.ndarray], exact: Callable[[list[int]], dict[int, np.ndarray]],
               rebuild: Callable[[Segment], None],
               seg_keys: Optional[Callable[[Segment], tuple[np.ndarray, np.ndarray]]] = None) -> list[tuple[int, float]]:
        """Top-k (id, exact cosine) in one space. `allowed`: ids passing the stream/time filter (None: all);
        `exact(ids)` -> {id: key} from SQLite for rescoring segment candidates (deleted ids come back missing);
        `seg_keys(segment)` -> its (ids, keys) from SQLite, for the device path."""
        import faiss

        if not self._device_chosen:
            from .gpu import wanted

            self.use_device(wanted())
        if self.device is not None and self.device.failed:
            self.repairs.append(f"GPU search failed ({self.device.failed}); searching on the CPU")
            self.device = None
        if self.device is not None and seg_keys is not None:
            try:
                found = self._search_device(q, space, k, streams, t_range, allowed, exact, seg_keys)
                if found is not None:
                    return found
            except RuntimeError as e:  # out of device memory (or the device went away): the CPU path serves
                self.repairs.append(f"GPU search failed ({str(e).splitlines()[0][:120]}); searching on the CPU")
                self.device = None

        q = q.reshape(1, -1)
        sel = faiss.IDSelectorBatch(allowed) if allowed is not None else None
        found: dict[int, float] = {}
        with self.lock:
            tails = [t for (sp, st), t in self.tails.items() if sp == space and t.ntotal and
                     (streams is None or st in streams)]
            segs = [s for s in self.segments.get(space, []) if (streams is None or s.stream in streams) and
                    (t_range is None or (s.t1 > t_range[0] and s.t0 < t_range[1]))]
            for t in tails:  # exact; under the lock because the writer adds to tails
                D, I = t.search(q, min(k, t.ntotal), params=faiss.SearchParameters(sel=sel) if sel else None)
                for d, i in zip(D[0], I[0]):
                    if i >= 0:
                        found[int(i)] = float(d)
        # segments: approximate scores (SQ8 codes), then the best few are rescored with their exact keys from SQLite
        # in one batch (deleted memories come back missing and drop out); more are fetched if deletions ate into k
        want = k + max(SLACK, k // 4)
        for attempt in range(3):
            approx: dict[int, float] = {}
            for s in segs:
                idx = self._load(s, rebuild)
                kk = min(want, idx.ntotal)
                if kk <= 0:
                    continue
                if faiss.try_extract_index_ivf(idx.index) is not None:
                    params = faiss.SearchParametersIVF(sel=sel, nprobe=NPROBE) if sel else faiss.SearchParametersIVF(nprobe=NPROBE)
                else:
                    params = faiss.SearchParameters(sel=sel) if sel else None
                D, I = idx.search(q, kk, params=params)
                for d, i in zip(D[0], I[0]):
                    if i >= 0 and int(i) not in found:
                        approx[int(i)] = max(float(d), approx.get(int(i), -2.0))
            if not approx:
                break
            best = sorted(approx, key=lambda i: -approx[i])[:want]
            keys = exact(best)
            if keys:
                ids = list(keys)
                scores = np.stack([keys[i] for i in ids]) @ q[0]
                found.update(zip(ids, scores.tolist()))
            missing = len(best) - len(keys)
            if missing == 0 or len(found) >= k or len(approx) < want:
                break
            want *= 4  # tombstones (deleted memories) among the candidates: look deeper
        return sorted(found.items(), key=lambda x: (-x[1], x[0]))[:k]

    def _search_device(self, q: np.ndarray, space: str, k: int, streams: Optional[set], t_range: Optional[tuple],
                       allowed: Optional[np.ndarray], exact: Callable[[list[int]], dict[int, np.ndarray]],
                       seg_keys: Callable[[Segment], tuple[np.ndarray, np.ndarray]]) -> Optional[list[tuple[int, float]]]:
        """Every tail and segment of the space scored on the device (one top-k), then rescored exactly. None while
        more than DEVICE_SYNC_ROWS segment keys are still to be copied there (a background thread copies them;
        the caller searches on the CPU meanwhile)."""
        import faiss

        dev = self.device
        mats = []
        with self.lock:
            segs = [s for s in self.segments.get(space, []) if (streams is None or s.stream in streams) and
                    (t_range is None or (s.t1 > t_range[0] and s.t0 < t_range[1]))]
        pending = [s for s in segs if not dev.has(("seg", s.seg), 0)]
        if sum(s.n for s in pending) > DEVICE_SYNC_ROWS:
            dev.prefetch([(("seg", s.seg), 0, lambda s=s: seg_keys(s)) for s in pending])
            return None
        with self.lock:
            tails = [((sp, st), t) for (sp, st), t in self.tails.items() if sp == space and t.ntotal and
                     (streams is None or st in streams)]
            for name, t in tails:  # copied under the lock: the writer adds to tails
                mats.append(dev.matrix(("tail",) + name, self.versions.get(name, 0),
                                       lambda t=t: (faiss.vector_to_array(t.id_map), t.index.reconstruct_n(0, t.ntotal))))
        mats += [dev.matrix(("seg", s.seg), 0, lambda s=s: seg_keys(s)) for s in segs]
        want = k + max(SLACK, k // 4)
        found: dict[int, float] = {}
        for attempt in range(3):
            approx = dev.topk(q.reshape(-1), mats, want, allowed)
            keys = exact([i for i, _ in approx])
            if keys:
                ids = list(keys)
                found = dict(zip(ids, (np.stack([keys[i] for i in ids]) @ q.reshape(-1)).tolist()))
            if len(found) >= k or len(approx) < want:
                break
            want *= 4  # deleted memories among the candidates: look deeper
        return sorted(found.items(), key=lambda x: (-x[1], x[0]))[:k]

    def reconstruct(self, mid: int, space: str) -> Optional[np.ndarray]:
        with self.lock:
            for (sp, _), t in self.tails.items():
                if sp == space and t.ntotal:
                    try:
                        return t.reconstruct(mid)
                    except RuntimeError:
                        continue
        return None

    def tail_ids(self, space: str) -> set:
        import faiss

        with self.lock:
            out: set = set()
            for (sp, _), t in self.tails.items():
                if sp == space and t.ntotal:
                    out |= set(faiss.vector_to_array(t.id_map).tolist())
            return out
