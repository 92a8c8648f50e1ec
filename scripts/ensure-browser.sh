#!/usr/bin/env bash
# Makes sure the console's browser test (internal/consolebrowser, make
# test-browser) can run: Debian's Chromium at /usr/bin/chromium, and
# playwright-core pinned by internal/consolebrowser/testdata/package-lock.json.
# playwright-core downloads no browser of its own and the test never runs
# `playwright install`: it drives the distribution's Chromium, which apt
# keeps patched. As root on Debian/Ubuntu it installs what is missing;
# anywhere else, or when an install fails, it stops saying what to install.
# A missing browser fails the test run; it is never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium=/usr/bin/chromium

# Another apt or dpkg may be running (a machine's set-up installing
# Chromium in the background): wait for it rather than start a second
# one, which would fail on the dpkg lock, then look again.
wait_for_apt() {
  local waited=0
  while pgrep -x apt-get >/dev/null || pgrep -x apt >/dev/null || pgrep -x dpkg >/dev/null; do
    if [ "$waited" = 0 ]; then echo "waiting for a running apt/dpkg to finish..." >&2; fi
    if [ "$waited" -ge 900 ]; then
      echo "apt/dpkg is still running after 15 minutes; install chromium when it is done (apt-get install chromium)" >&2
      exit 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
}

# Debian package -> a command that succeeds when it is usable.
declare -A checks=(
  [chromium]="test -x $chromium"
  [nodejs]="command -v node"
  [npm]="command -v npm"
)
missing_packages() {
  missing=()
  for pkg in "${!checks[@]}"; do
    if ! bash -c "${checks[$pkg]}" >/dev/null 2>&1; then missing+=("$pkg"); fi
  done
}
missing_packages
if [ "${#missing[@]}" -gt 0 ]; then
  wait_for_apt
  missing_packages
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing the browser test's Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Lock::Timeout: should an apt start between the wait above and here.
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null; then
      echo "apt-get install ${missing[*]} failed: the console's browser test cannot run without them" >&2
      exit 1
    fi
  else
    echo "the console's browser test needs these Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

# npm ci only when node_modules is missing or older than the lock file:
# npm writes node_modules/.package-lock.json after each install.
dir=internal/consolebrowser/testdata
if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
  echo "installing playwright-core (npm ci in $dir)..." >&2
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "npm ci in $dir failed: the console's browser test cannot run; check that the npm registry is reachable" >&2
    exit 1
  fi
fi
