"""Offline analysis: run the real-time pipeline over an RR file and print what it found.

Shows that the sans-I/O :class:`vagus.Pipeline` is fed offline exactly as it is fed live:
``receive_rr`` in, ``events_received`` out. By default it reads pyhrv's 5-minute sample
series from ``../shared/data``; pass another file (one RR in ms per line) to analyse yours::

    python examples/offline_analysis.py [RR_FILE_MS]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from vagus import Pipeline
from vagus.core.events import Beat, Metrics, Spectrum
from vagus.formats.plain import read_rr_text

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/pyhrv/SampleNNISeriesShort.txt"


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not path.exists():
        print(f"no RR file at {path}; pass one (one RR interval in ms per line)", file=sys.stderr)
        return 2
    rr_ms = read_rr_text(path, unit="ms").rr_ms  # '#' comment lines allowed
    pipeline = Pipeline()
    pipeline.receive_rr(rr_ms)
    pipeline.close()
    events = pipeline.events_received()
    beats = [e for e in events if isinstance(e, Beat)]
    metrics = [e for e in events if isinstance(e, Metrics)]
    spectra = [e for e in events if isinstance(e, Spectrum) and e.coherence_ratio is not None]
    classes = Counter(b.artifact for b in beats if b.artifact and not b.inserted)
    print(f"{path.name}: {len(beats)} beats over {beats[-1].t_s:.0f} s")
    print(f"artifacts: {dict(classes) or 'none'}")
    last = metrics[-1]
    print(
        f"last 60 s: HR {last.hr_bpm:.1f} bpm, RMSSD {last.rmssd_60s_ms:.1f} ms, "
        f"SDNN {last.sdnn_60s_ms:.1f} ms, pNN50 {last.pnn50_60s:.1f} %"
    )
    for s in spectra[:: max(1, len(spectra) // 5)]:
        print(
            f"t={s.t_s:5.0f} s  coherence ratio {s.coherence_ratio:5.2f}  "
            f"peak {s.peak_hz:.3f} Hz ({60 * s.peak_hz:.1f}/min)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
