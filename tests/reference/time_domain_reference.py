"""Recompute the time-domain reference values of shared/data/README.md with plain numpy.

Definitions of SCIENCE.md ("Time domain"): SDNN = std(NN, ddof=1); RMSSD = sqrt(mean(ΔNN²));
pNN50 = 100 · #(|ΔNN| > 50 ms) / #ΔNN (÷ N − 1). The full-precision output is pasted into
tests/test_validation.py (PYHRV_TIME_DOMAIN, a golden table).

Run from the project root:  python tests/reference/time_domain_reference.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pyhrv"

for name in ("Short", "Long"):
    nn = np.loadtxt(DATA / f"SampleNNISeries{name}.txt", comments="#")
    d = np.diff(nn)
    sdnn = np.std(nn, ddof=1)
    rmssd = np.sqrt(np.mean(d**2))
    pnn50 = 100.0 * np.count_nonzero(np.abs(d) > 50) / d.size
    print(f"{name}: beats={nn.size} sdnn={sdnn!r} rmssd={rmssd!r} pnn50={pnn50!r}")
