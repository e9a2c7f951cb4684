"""Issue 13 §5: import streams a plain RR list; endless input is refused."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from vagus.formats.registry import PlainStream, open_rr_file, read_rr_file


def write(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    rr = 850 + 60 * np.sin(np.arange(n) / 0.9) + rng.normal(0, 20, n)
    path.write_bytes(b"\n".join(b"%.1f" % v for v in rr.round(1).tolist()) + b"\n")


def test_streamed_records_are_the_records_of_the_whole_file(tmp_path: Path) -> None:
    f = tmp_path / "rr.txt"
    write(f, 5000)
    streamed = open_rr_file(f, "plain", unit="ms")
    assert isinstance(streamed, PlainStream)
    whole = read_rr_file(f, "plain", unit="ms")
    assert streamed.beats == whole.beats == 5000
    assert streamed.duration_s == pytest.approx(whole.duration_s, rel=1e-12)
    got = streamed.records(participant="ann")
    want = whole.records(participant="ann")
    assert len(got) == len(want) == 5
    assert list(got) == want
    assert list(got) == want  # iterable again: read from the file each time
    assert got[-1] == want[-1] and got[1:3] == want[1:3]
    # Detection gives the same stream.
    assert isinstance(open_rr_file(f, None, unit="ms"), PlainStream)


def _peak(fn: object) -> int:
    assert callable(fn)
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(900)
def test_import_memory_does_not_hold_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vagus.cli.transfer import import_file
    from vagus.formats import plain
    from vagus.store.open import open_store

    monkeypatch.setattr(plain, "CHUNK_BYTES", 1 << 16)  # ~11,000 values a block
    n = 100_000
    f = tmp_path / "rr.txt"
    write(f, n)
    small = tmp_path / "small.txt"
    write(small, 3000, seed=1)
    store = open_store(tmp_path / "data")
    try:
        import_file(store, small, fmt="plain", unit="ms")  # lazy imports loaded first
        # What import held before streaming: every value, then every record.
        held = _peak(lambda: read_rr_file(f, "plain", unit="ms").records())
        result: dict[str, object] = {}
        peak = _peak(lambda: result.update(import_file(store, f, fmt="plain", unit="ms")))
        assert result["beats"] == n
        records = list(store.iter_input(str(result["id"])))
        assert sum(len(r.rr_ms) for r in records) == n  # type: ignore[union-attr]
    finally:
        store.close()
    # Before, import held the file's values and records and then more (the pipeline,
    # the store's rows): now its whole peak, pipeline and store included, is below that.
    assert peak < held, f"import peak {peak / 1e6:.1f} MB, holding the file {held / 1e6:.1f} MB"


def test_streamed_records_hold_one_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vagus.formats import plain

    monkeypatch.setattr(plain, "CHUNK_BYTES", 1 << 16)  # ~11,000 values a block
    n = 300_000
    f = tmp_path / "rr.txt"
    write(f, n)
    stream = open_rr_file(f, "plain", unit="ms")
    count = 0

    def consume() -> None:
        nonlocal count
        for record in stream.records():
            count += len(record.rr_ms)  # type: ignore[union-attr]

    held = _peak(lambda: read_rr_file(f, "plain", unit="ms").records())
    peak = _peak(consume)
    assert count == n
    assert peak < held / 8, f"streamed {peak / 1e6:.1f} MB, held {held / 1e6:.1f} MB"
