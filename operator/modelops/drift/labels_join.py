"""Joining delayed labels to logged predictions, vectorised: one hash pass, then integer arrays.

Both key columns get codes from one shared dictionary (:func:`encode_keys`: numpy hashing of the
keys' bytes, one sort, exact byte-for-byte verification; Arrow's hash table for keys over 64
bytes), so every later step is a numpy operation on integer codes: duplicate counts are
``bincount``, "the latest label per id" is one stable ``lexsort`` of the duplicated ids' event
times, and each prediction's label is a gather. No Python loop touches a row.

Rules (the engine counts and reports each case; none is silently dropped):

- a prediction whose key is missing, or shared with another prediction (e.g. the rows of one
  batched request under one ``request_id``), gets no label: the pairing would be a guess;
- an id with several labels keeps the one with the latest event time (ties and label sources
  without an event time: the last row), so a corrected label supersedes the first; ids whose
  labels disagree are counted as conflicting;
- labels not yet known at check time (event time after ``now``) are ignored;
- a label whose id matches no prediction at all is counted (wrong ids, expired logs).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

KEY_OK, KEY_MISSING, KEY_DUPLICATE = 0, 1, 2
SHARED_KEY, MISSING_KEY = -2, -3
"""Markers in the per-key table :func:`join_codes` gathers (label rows are >= 0, -1 is none)."""
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class JoinResult:
    """Per prediction row, the index of its label row (-1: none) and whether its key was usable
    (:data:`KEY_OK`, :data:`KEY_MISSING`, :data:`KEY_DUPLICATE`); and what the join saw."""

    label_row: IntArray
    key_status: npt.NDArray[np.int8]
    missing_keys: int = 0
    duplicate_prediction_rows: int = 0
    missing_label_ids: int = 0
    duplicate_label_ids: int = 0
    superseded_labels: int = 0
    conflicting_label_ids: int = 0
    future_labels: int = 0
    labels_without_predictions: int = 0
    label_ids_used: int = 0


def _as_string_keys(values: Any) -> Any:
    """Arrow string keys: ids may be integers on one side and strings on the other."""
    import pyarrow as pa

    from modelops.drift import arrow_kernels as ak

    if isinstance(values, pa.ChunkedArray):
        chunks = values.chunks
        typ = values.type
    else:
        chunks = [values]
        typ = values.type
    if pa.types.is_dictionary(typ):
        chunks = [c.dictionary_decode() for c in chunks]
        typ = typ.value_type
    if pa.types.is_floating(typ):
        # 12.0 and "12" are the same id; non-integral floats stay as they print.
        out = []
        for c in chunks:
            integral = ak.call("and", ak.call("is_finite", c), ak.call("equal", ak.call("floor", c), c))
            as_int = ak.cast(ak.call("if_else", integral, c, 0.0), pa.int64())
            out.append(ak.call("if_else", integral, ak.cast(as_int, pa.string()), ak.cast(c, pa.string())))
        chunks = out
    elif not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        chunks = [ak.cast(c, pa.string()) for c in chunks]
    return list(chunks)


MAX_WORDS = 8
"""Keys up to 64 bytes take the numpy path; longer ones are hashed by Arrow."""
VERIFY_BLOCK = 1 << 16
"""Rows compared per gather when verifying equal hashes (2.5 MB of UUID records: in cache)."""
HASH_BLOCK = 1 << 15
"""Rows written and hashed together (their records, 32K x 40 bytes for UUIDs, stay in cache)."""
WORKERS = max(1, min(4, os.cpu_count() or 1))
"""Threads that write, hash and verify the keys (each on its own run of rows)."""
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
"""The low ``k`` bytes of a little-endian word: what belongs to a key whose tail is ``k`` bytes."""
_LENGTH_SHIFT = np.uint64(56)


@dataclass(frozen=True)
class _StringColumn:
    """An Arrow string array's buffers as numpy, read in place: nothing here is one entry per row
    but ``valid`` (only when there are nulls); starts and lengths are taken a block at a time."""

    data: npt.NDArray[np.uint8]
    offsets: npt.NDArray[Any]  # n + 1 offsets into ``data`` (int32 or int64, a view)
    length_offsets: npt.NDArray[Any]  # the keys' own offsets: their lengths (differ when padded)
    valid: BoolArray | None
    longest: int
    uniform: bool  # every key the same length, stored back to back

    @property
    def size(self) -> int:
        return int(self.offsets.size) - 1

    def block(self, a: int, b: int) -> _Block:
        starts = self.offsets[a:b].astype(np.int64)
        lengths = np.diff(self.length_offsets[a : b + 1]).astype(np.int64)
        return _Block(self.data, starts, lengths, self.longest, self.uniform)


@dataclass(frozen=True)
class _Block:
    """Rows ``a:b`` of a :class:`_StringColumn`: where each key starts and its length."""

    data: npt.NDArray[np.uint8]
    starts: IntArray
    lengths: IntArray
    longest: int
    uniform: bool


def _string_column(arr: Any) -> _StringColumn:
    """The buffers of an Arrow string array; keys of mixed lengths read through a NUL-padded copy.

    Padding every key to the longest (one Arrow kernel) turns the per-word gathers of
    :func:`_fill_words` into strided loads, 2-3x faster. The lengths stay the original ones, so
    ``"a"`` and ``"a\\0"`` remain different keys. Padding counts characters, not bytes: a column
    with multi-byte characters does not come out uniform and keeps the gather path.
    """
    from modelops.drift import arrow_kernels as ak

    n = len(arr)
    offsets = _offsets(arr)
    valid = np.asarray(ak.is_valid(arr).to_numpy(zero_copy_only=False), dtype=np.bool_) if arr.null_count else None
    first, last = (int(offsets[0]), int(offsets[-1])) if n else (0, 0)
    longest = int(np.max(offsets[1:] - offsets[:-1])) if n else 0
    # With the longest length as the maximum, a total of n x longest means every key has it.
    uniform = n > 0 and last - first == n * longest
    length_offsets = offsets
    if n and not uniform and longest <= 8 * MAX_WORDS:
        padded = ak.utf8_rpad(ak.fill_null(arr, "") if arr.null_count else arr, longest, "\0")
        padded_offsets = _offsets(padded)
        if int(padded_offsets[-1] - padded_offsets[0]) == n * longest:
            arr, offsets, uniform = padded, padded_offsets, True
    buffer = arr.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, dtype=np.uint8)
    return _StringColumn(data, offsets, length_offsets, valid, longest, uniform)


def _offsets(arr: Any) -> npt.NDArray[Any]:
    """The array's n + 1 offsets, a zero-copy view (int32, or int64 for large strings)."""
    import pyarrow as pa

    n = len(arr)
    width = 8 if pa.types.is_large_string(arr.type) else 4
    return np.frombuffer(
        arr.buffers()[1], dtype=np.int64 if width == 8 else np.int32, count=n + 1, offset=arr.offset * width
    )


def _fill_words(col: _Block, out: npt.NDArray[np.uint64]) -> None:
    """Write each key as zero-padded little-endian 64-bit words: ``out[j]`` is word ``j`` of every key.

    Word ``j`` is one unaligned 8-byte load at ``start + 8 j``, masked to the key's length: a
    strided read when every key has the same length (UUIDs, hashes, padded numbers), a gather
    otherwise. Loads that would run past the buffer read a zero-padded copy of its tail.
    """
    n = col.starts.size
    data = col.data
    last_safe = data.size - 8
    tail = np.zeros(16, dtype=np.uint8)
    if data.size:
        tail[: min(8, data.size)] = data[max(0, last_safe) :]
    tail_words = np.ndarray(shape=(9,), dtype="<u8", buffer=tail, strides=(1,))
    body = np.ndarray(shape=(last_safe + 1,), dtype="<u8", buffer=data, strides=(1,)) if last_safe >= 0 else None
    pos, rem = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)  # reused for every word
    for j in range(out.shape[0]):
        if n == 0 or 8 * j >= col.longest:
            out[j] = 0
            continue
        first = int(col.starts[0]) + 8 * j
        if col.uniform and first + (n - 1) * col.longest <= last_safe:
            loaded = np.ndarray(shape=(n,), dtype="<u8", buffer=data, offset=first, strides=(col.longest,))
            np.bitwise_and(loaded, _MASKS[min(col.longest - 8 * j, 8)], out=out[j])
            continue
        np.add(col.starts, 8 * j, out=pos)
        late = np.flatnonzero(pos > last_safe)
        if body is not None:
            np.minimum(pos, last_safe, out=pos)
            loaded = body[pos]  # fancy indexing: np.take is ~10x slower on this unaligned view
        else:
            loaded = np.zeros(n, dtype=np.uint64)
        if late.size:
            loaded[late] = tail_words[np.minimum(col.starts[late] + 8 * j - max(last_safe, 0), 8)]
        np.subtract(col.lengths, 8 * j, out=rem)
        np.clip(rem, 0, 8, out=rem)
        np.bitwise_and(loaded, _MASKS[rem], out=out[j])


def _hash(words: npt.NDArray[np.uint64], lengths: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each key (a column of ``words``): multiply-xor per word, splitmix finaliser."""
    h = lengths.astype(np.uint64)
    h *= _C1
    for word in words:
        h ^= word
        h *= _C2
    h ^= h >> np.uint64(31)
    h *= _C3
    h ^= h >> np.uint64(29)
    return h


Hasher = Callable[[npt.NDArray[np.uint64], npt.NDArray[Any]], npt.NDArray[np.uint64]]


def _parts(chunks: list[Any], parts: int) -> list[list[Any]]:
    """``chunks`` cut into at most ``parts`` runs of about equal rows, in order (zero-copy slices)."""
    total = sum(len(c) for c in chunks)
    size = max(1, -(-total // parts))
    out: list[list[Any]] = [[] for _ in range(parts)]
    at = 0
    for chunk in chunks:
        offset = 0
        while offset < len(chunk):
            part = (at + offset) // size
            take = min(len(chunk) - offset, (part + 1) * size - (at + offset))
            out[part].append(chunk if take == len(chunk) else chunk.slice(offset, take))
            offset += take
        at += len(chunk)
    return [p for p in out if p] or [[]]


def _in_threads(func: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``func`` over ``items``, one thread each (numpy and Arrow release the GIL on big arrays)."""
    if len(items) <= 1:
        return [func(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(func, items))


def _fast_codes(
    pred: list[Any],
    labels: list[Any],
    hasher: Hasher = _hash,
    verify_block: int = VERIFY_BLOCK,
    workers: int = WORKERS,
) -> tuple[IntArray, int] | None:
    """Shared integer codes by sorting packed (hash, row) keys; None when keys are too long.

    ``pred`` and ``labels`` are lists of Arrow string arrays (chunks, read in place). The top bits
    of a 64-bit hash and the row number share one uint64, so a single plain ``np.sort`` groups
    equal keys; then every row is compared byte for byte with the row before it in sorted order,
    and a group that turns out to mix keys (a hash collision) is split exactly. Each key is one
    record of its words and length (row-major), written once, hashed, then gathered into sorted
    order in one pass: at a million keys, every extra copy costs page faults (on a VM, first
    touching memory costs more than the work done in it), so nothing else is one entry per row. Writing and hashing
    the records, and the verification, run in ``workers`` threads over equal runs of rows.
    """
    chunks = [*pred, *labels]
    parts = _parts(chunks, max(1, workers))
    columns = _in_threads(lambda part: [_string_column(c) for c in part], parts)
    longest = max((c.longest for cols in columns for c in cols), default=0)
    words_n = max(1, -(-longest // 8))
    if words_n > MAX_WORDS:
        return None
    # A key's length goes in the top byte of its last word when no key reaches that byte (36-byte
    # UUIDs: 5 words, not 6), else in a word of its own.
    length_word = longest % 8 == 0
    width = words_n + 1 if length_word else words_n
    bounds = np.cumsum([0] + [sum(c.size for c in cols) for cols in columns]).tolist()
    total = bounds[-1]
    records = np.empty((total, width), dtype=np.uint64)
    hashes = np.empty(total, dtype=np.uint64)
    row_bits = np.uint64(max(1, int(total).bit_length()))

    def fill_and_hash(k: int) -> None:
        # A block of rows at a time, hashed while its records are still in the CPU's cache.
        at = bounds[k]
        for col in columns[k]:
            for a in range(0, col.size, HASH_BLOCK):
                b = min(a + HASH_BLOCK, col.size)
                block = col.block(a, b)
                rows = records[at : at + b - a]
                _fill_words(block, rows[:, :words_n].T)
                if length_word:
                    rows[:, words_n] = block.lengths
                else:
                    rows[:, words_n - 1] |= block.lengths.astype(np.uint64) << _LENGTH_SHIFT
                hashed = hasher(rows.T, block.lengths)
                hashed >>= row_bits
                hashed <<= row_bits
                hashed |= np.arange(at, at + b - a, dtype=np.uint64)
                hashes[at : at + b - a] = hashed
                at += b - a

    _in_threads(fill_and_hash, list(range(len(parts))))
    codes = np.full(total, -1, dtype=np.int64)
    packed = hashes  # sorted in place: the hashes are not needed in row order
    if any(c.valid is not None for cols in columns for c in cols):
        valid = [np.ones(c.size, dtype=np.bool_) if c.valid is None else c.valid for cols in columns for c in cols]
        packed = hashes[np.concatenate(valid)]
    if packed.size == 0:
        return codes, 0
    packed.sort()
    order = np.bitwise_and(packed, (np.uint64(1) << row_bits) - np.uint64(1)).view(np.int64)
    packed >>= row_bits  # now the hash prefix alone
    first = np.empty(packed.size, dtype=np.bool_)
    first[0] = True
    np.not_equal(packed[1:], packed[:-1], out=first[1:])
    del packed
    group = np.cumsum(first, dtype=np.int64)
    group -= 1
    codes[order] = group
    n_keys = int(group[-1]) + 1
    del group
    # Exactness: within a group, each row must equal the one before it in sorted order. Records
    # are gathered into that order a block at a time (a block overlaps the previous by one row).
    as_records = records.view(np.dtype((np.void, 8 * width))).ravel()
    pairs = max(order.size - 1, 0)
    mixed = np.zeros(pairs, dtype=np.bool_)

    def verify(span: tuple[int, int]) -> None:
        for lo in range(span[0], span[1], verify_block):
            hi = min(lo + verify_block, span[1]) + 1
            block = np.take(as_records, order[lo:hi]).view(np.uint64).reshape(hi - lo, width)
            differs = mixed[lo : hi - 1]
            np.not_equal(block[1:, 0], block[:-1, 0], out=differs)
            for j in range(1, width):  # column by column: faster than one 2-D comparison and any()
                differs |= block[1:, j] != block[:-1, j]

    cuts = np.linspace(0, pairs, max(1, min(workers, pairs)) + 1).astype(np.int64).tolist()
    _in_threads(verify, [(a, b) for a, b in itertools.pairwise(cuts) if b > a])
    mixed &= ~first[1:]
    if np.any(mixed):
        n_keys = _split_collisions(codes, order[1:][mixed], chunks, n_keys)
    return codes, n_keys


def _split_collisions(codes: IntArray, mixed_rows: IntArray, chunks: list[Any], n_keys: int) -> int:
    """Give distinct keys that share a group their own codes (exact; rare, so plain Python)."""
    ends = np.cumsum([len(c) for c in chunks])

    def key(row: int) -> Any:
        k = int(np.searchsorted(ends, row, side="right"))
        start = int(ends[k - 1]) if k else 0
        return chunks[k][row - start].as_py()

    for g in np.unique(codes[mixed_rows]).tolist():
        members = np.flatnonzero(codes == g)
        seen: dict[Any, int] = {}
        for row in members.tolist():
            value = key(row)
            if value not in seen:
                seen[value] = g if not seen else n_keys + len(seen) - 1
            codes[row] = seen[value]
        n_keys += len(seen) - 1
    return n_keys


def encode_keys(
    prediction_keys: Any,
    label_ids: Any,
    *,
    hasher: Hasher = _hash,
    verify_block: int = VERIFY_BLOCK,
    workers: int = WORKERS,
) -> tuple[IntArray, IntArray, int]:
    """Integer codes of both key columns in one shared dictionary (-1: missing key).

    Keys up to 64 bytes: numpy hashing and one sort (:func:`_fast_codes`, ~8x faster than
    Arrow's string hash table on 2M UUIDs); longer keys: Arrow's ``dictionary_encode``.
    ``hasher``, ``verify_block`` and ``workers`` are for tests (a constant hash makes every key
    collide; a small block makes the verification cross block boundaries; threads split the rows).
    """
    pred = _as_string_keys(prediction_keys)
    labels = _as_string_keys(label_ids)
    n_pred = sum(len(c) for c in pred)
    fast = _fast_codes(pred, labels, hasher, verify_block, workers)
    if fast is not None:
        codes, size = fast
        return codes[:n_pred], codes[n_pred:], size
    import pyarrow as pa

    from modelops.drift import arrow_kernels as ak

    both = pa.chunked_array([ak.cast(c, pa.large_string()) for c in [*pred, *labels]], type=pa.large_string())
    both = both.combine_chunks()
    encoded = ak.call("dictionary_encode", both)
    size = len(encoded.dictionary)
    codes = np.asarray(
        ak.fill_null(ak.cast(encoded.indices, pa.int64()), -1).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    return codes[:n_pred], codes[n_pred:], size


def join_codes(
    pred_codes: IntArray,
    label_codes: IntArray,
    n_keys: int,
    *,
    label_time: IntArray | None = None,
    label_value: FloatArray | None = None,
    label_known: BoolArray | None = None,
) -> JoinResult:
    """The join on encoded keys; see the module docstring for the rules.

    ``label_time``: event times (any monotonic integer unit; ignored where ``label_known`` is
    False); ``label_value``: a numeric image of each label (class code or value, NaN when
    missing) to detect conflicting duplicates; ``label_known``: labels usable at check time.
    """
    n_labels = int(label_codes.size)
    has_id = label_codes >= 0
    usable = has_id if label_known is None else has_id & label_known
    n_has_id = int(np.count_nonzero(has_id))
    rows = np.flatnonzero(usable)
    future = n_has_id - rows.size
    codes = label_codes[rows]

    label_count = np.bincount(codes, minlength=n_keys)
    duplicated = label_count > 1
    chosen = np.full(n_keys, -1, dtype=np.int64)
    # Ids with one label: that row. Only the (usually few) duplicated ids need an order; their
    # entries, written here by whichever row came last, are all set again below.
    chosen[codes] = rows
    conflicting = 0
    dup = np.flatnonzero(duplicated[codes])
    if dup.size:
        dup_rows, dup_codes = rows[dup], codes[dup]
        # Sort by id, then event time, then row (lexsort is stable): the last of each id wins.
        keys = [dup_rows, dup_codes] if label_time is None else [dup_rows, label_time[dup_rows], dup_codes]
        order = np.lexsort(keys)
        ordered = dup_codes[order]
        last = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
        chosen[ordered[last]] = dup_rows[order[last]]
        if label_value is not None:
            # A missing and a present label disagree, so NaN is compared as a value.
            values = label_value[dup_rows][order]
            values = np.where(np.isnan(values), -np.inf, values)
            first = np.append(0, last[:-1] + 1)
            lo = np.minimum.reduceat(values, first)
            hi = np.maximum.reduceat(values, first)
            conflicting = int(np.count_nonzero(lo != hi))
    has_label = chosen >= 0

    pred_has_key = pred_codes >= 0
    all_keys = bool(pred_has_key.all())
    pred_count = np.bincount(pred_codes if all_keys else pred_codes[pred_has_key], minlength=n_keys)
    # One table per key, gathered once per prediction: its label row (-1: none), or -2 where the
    # key is shared by several predictions (a second gather of the counts would cost as much again:
    # both are random reads of a table of n_keys entries).
    # Label rows fit int32 (a table half the size: fewer cache misses) but past 2**31 labels.
    per_key: npt.NDArray[np.signedinteger[Any]] = chosen.astype(np.int32 if n_labels < 2**31 - 1 else np.int64)
    per_key[pred_count > 1] = SHARED_KEY
    if all_keys:
        gathered = per_key[pred_codes]
    else:
        gathered = per_key[np.where(pred_has_key, pred_codes, 0)]
        gathered[~pred_has_key] = MISSING_KEY
    label_row = np.maximum(gathered, -1).astype(np.int64)
    key_status = np.where(gathered >= -1, KEY_OK, KEY_DUPLICATE).astype(np.int8)
    n_with_key = pred_codes.size if all_keys else int(np.count_nonzero(pred_has_key))
    if not all_keys:
        key_status[gathered == MISSING_KEY] = KEY_MISSING
    n_unique = int(np.count_nonzero(key_status == KEY_OK))
    n_has_label = int(np.count_nonzero(has_label))
    used = int(np.count_nonzero(has_label & (pred_count > 0)))
    return JoinResult(
        label_row=label_row,
        key_status=key_status,
        missing_keys=pred_codes.size - n_with_key,
        duplicate_prediction_rows=n_with_key - n_unique,
        missing_label_ids=n_labels - n_has_id,
        duplicate_label_ids=int(np.count_nonzero(duplicated)),
        superseded_labels=rows.size - n_has_label,
        conflicting_label_ids=conflicting,
        future_labels=future,
        labels_without_predictions=n_has_label - used,
        label_ids_used=used,
    )


def as_arrow(values: Any) -> Any:
    """An Arrow array or chunked array as is; anything else (lists, numpy) converted."""
    import pyarrow as pa

    return values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)


def join_labels(
    prediction_keys: Any,
    label_ids: Any,
    *,
    label_time: IntArray | None = None,
    label_value: FloatArray | None = None,
    label_known: BoolArray | None = None,
) -> JoinResult:
    """Join Arrow (or numpy) key columns; see :func:`join_codes`."""
    pred_codes, label_codes, n_keys = encode_keys(as_arrow(prediction_keys), as_arrow(label_ids))
    return join_codes(
        pred_codes,
        label_codes,
        n_keys,
        label_time=label_time,
        label_value=label_value,
        label_known=label_known,
    )
