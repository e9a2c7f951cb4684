"""Test support code that exercises real code paths; not part of the installed package.

:mod:`support.fake_bluez` is the simulated BlueZ on a private D-Bus (Linux-only, needs
``dbus-fast`` from the dev extra). The tests import it as ``support.fake_bluez`` (pytest
puts ``tests/`` on ``sys.path``); ``vagus bench ble`` runs it from a source checkout; and a
user without a strap can run the real bleak reader against it::

    python tests/support/fake_bluez.py --straps 3
"""
