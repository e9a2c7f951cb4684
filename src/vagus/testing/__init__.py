"""Test doubles that exercise real code paths: the simulated BlueZ (:mod:`.fake_bluez`).

They live in the package (not only in ``tests/``) because ``vagus bench ble`` uses them
too, and because a user without a strap can run the real bleak reader against them::

    python -m vagus.testing.fake_bluez --straps 3
"""

from __future__ import annotations
