#!/bin/sh
# Install the Debian packages the test suite needs (part of the README's test command).
# - dbus: a private dbus-daemon hosts the simulated BlueZ that the real bleak code talks to.
# - chromium: the browser tests (tests/test_browser_*.py) drive Debian's Chromium through
#   Playwright's Python package (installed by pip from the dev extra); Playwright never
#   downloads a browser of its own.
set -eu
need=""
command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "installing Debian packages:$need" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
