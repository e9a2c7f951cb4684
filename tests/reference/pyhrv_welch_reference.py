"""Reproduce pyhrv 0.5.0's Welch LF/HF (SampleReport.txt, SampleExport.json) with scipy.

pyhrv ``frequency_domain.welch_psd`` (read from its source): t = cumsum(NN) − NN[0];
cubic ``interp1d`` on a 4 Hz grid from 0 to t[-1]; mean subtracted; ``scipy.signal.welch``
with a Hamming window, nfft = 4096, nperseg = 4096 (clipped to the series) below 300 s
of data, else nperseg = 300 (75 s, 50 % overlap); band power = sum(PSD in band) · df,
bands [0.04, 0.15) and [0.15, 0.4). This prints values equal to pyhrv's own output to
1e-9, which shows the golden numbers in tests/test_validation.py (PYHRV_WELCH) are what
that method gives, and lets the test explain our difference (see there).

Run from the project root:  python tests/reference/pyhrv_welch_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.interpolate import interp1d
from scipy.signal import welch

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pyhrv"


def pyhrv_welch(nn: np.ndarray) -> tuple[float, float]:
    t = np.cumsum(nn)
    t -= t[0]
    y = interp1d(t, nn, "cubic")(np.arange(t[0], t[-1], 250.0))
    y = y - y.mean()
    nperseg = 4096 if t.max() < 300_000 else 300
    f, p = welch(y, fs=4, window="hamming", nperseg=min(nperseg, y.size), nfft=4096)
    df = f[1] - f[0]
    lf = p[(f >= 0.04) & (f < 0.15)].sum() * df
    hf = p[(f >= 0.15) & (f < 0.4)].sum() * df
    return float(lf), float(hf)


if __name__ == "__main__":
    export = json.loads((DATA / "SampleExport.json").read_text())
    for name in ("Short", "Long"):
        nn = np.loadtxt(DATA / f"SampleNNISeries{name}.txt", comments="#")
        print(name, "recomputed (LF, HF) ms²:", pyhrv_welch(nn))
    print("SampleExport.json (Short) fft_abs[1:]:", export["fft_abs"][1:])
    print("SampleReport.txt (Long): LF 2942.5372448423686, HF 1648.0967694750873")
