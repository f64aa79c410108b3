#!/usr/bin/env bash
# Unpacks the built .deb into a scratch root (dpkg -x, no installation) and checks what a user
# gets: the binary runs (--version), the .desktop entry launches it, the icon is there.
# Prints the package size for README. Usage: scripts/check-deb.sh [path/to/bundle/deb]
set -euo pipefail
dir="${1:-${CARGO_TARGET_DIR:-target}/release/bundle/deb}"
deb=$(ls -1 "$dir"/*.deb | head -n1)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'
dpkg -x "$deb" "$root"
bin="$root/usr/bin/kiyeovo-desktop"
desktop=$(ls "$root"/usr/share/applications/*.desktop)
test -x "$bin" || { echo "check-deb: $bin missing or not executable" >&2; exit 1; }
"$bin" --version | grep -q '^kiyeovo-desktop ' || { echo "check-deb: --version failed" >&2; exit 1; }
grep -q '^Exec=kiyeovo-desktop' "$desktop" || { echo "check-deb: Exec line wrong in $desktop" >&2; exit 1; }
grep -q '^Name=Kiyeovo' "$desktop" || { echo "check-deb: Name wrong in $desktop" >&2; exit 1; }
# The tray loads libayatana-appindicator at run time; the package must pull it in.
dpkg-deb --field "$deb" Depends | grep -q 'libayatana-appindicator3-1' || { echo "check-deb: Depends lacks libayatana-appindicator3-1" >&2; exit 1; }
# The database is encrypted with SQLCipher, linked against the system's libcrypto.
dpkg-deb --field "$deb" Depends | grep -q 'libssl3' || { echo "check-deb: Depends lacks libssl3" >&2; exit 1; }
icon=$(sed -n 's/^Icon=//p' "$desktop")
# Notifications name this icon (crates/kiyeovo-core/src/desktop/os.rs).
[ "$icon" = "kiyeovo-desktop" ] || { echo "check-deb: icon is $icon, notifications use kiyeovo-desktop" >&2; exit 1; }
ls "$root"/usr/share/icons/hicolor/*/apps/"$icon".png >/dev/null || { echo "check-deb: icon $icon missing" >&2; exit 1; }
echo "check-deb: OK — $(basename "$deb"), $(du -h "$deb" | cut -f1) ($(stat -c %s "$deb") bytes)"
