#!/usr/bin/env bash
# Installs the system packages Kiyeovo needs on Debian/Ubuntu, only if some are missing.
#   scripts/install-deps.sh        what building and running the app needs
#   scripts/install-deps.sh test   plus what the test suite needs (Xvfb, WebKitWebDriver, keyring,
#                                  nftables for the NAT test)
set -euo pipefail

run_pkgs=(
  build-essential pkg-config file
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  libdbus-1-dev gnome-keyring
)
test_pkgs=(xvfb webkit2gtk-driver dbus dbus-daemon python3 python3-xlib dunst trayer iproute2 nftables)

pkgs=("${run_pkgs[@]}")
if [ "${1:-}" = "test" ]; then
  pkgs+=("${test_pkgs[@]}")
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: not a Debian/Ubuntu system; see README.md (Other systems) for your packages." >&2
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
