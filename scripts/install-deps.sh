#!/usr/bin/env bash
# Install the system packages amika and its tests need, when missing (Debian/Ubuntu, as root).
# Usage: scripts/install-deps.sh [runtime|test]
set -euo pipefail
want=(bubblewrap slirp4netns)
# openssh-sftp-server: the SSH endpoint's SFTP subsystem (scp, sftp) runs its sftp-server inside
# the sandbox (sandboxes see the host's /usr).
want+=(openssh-sftp-server)
# nodejs, npm: the coder preset (`amika preset install coder`) is installed with the host's npm,
# and sandboxes run its scripts with the host's /usr/bin/node (they see the host's /usr).
command -v node >/dev/null && command -v npm >/dev/null || want+=(nodejs npm)
if [[ "${1:-runtime}" == test ]]; then
  want+=(postgresql chromium)   # chromium: the web UI tests (tests/ui) drive it headless
  want+=(wrk)                   # wrk: the API benchmark's smoke run (bench/smoke.sh)
  want+=(openssh-client)        # ssh, scp, sftp: the SSH endpoint's tests drive the real clients
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "amika needs these packages: ${missing[*]} — install them (e.g. sudo apt-get install -y ${missing[*]})" >&2
  [[ "${1:-runtime}" == test ]] && exit 1 || exit 0
fi
echo "installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
