#!/bin/sh
# System packages the tests need beyond PyPI: Debian's chromium for the browser tests (driven by PyPI's playwright
# through executable_path; no browser is downloaded). Root on this machine kind; uses sudo elsewhere if available.
set -eu
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
