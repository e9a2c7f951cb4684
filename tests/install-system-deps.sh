#!/bin/sh
# Install the Debian packages the test suite needs (part of the README's test command).
# - dbus: a private dbus-daemon hosts the simulated BlueZ that the real bleak code talks to.
set -eu
need=""
command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "installing Debian packages:$need" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
