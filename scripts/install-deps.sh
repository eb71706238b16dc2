#!/usr/bin/env bash
# Install the system packages amika and its tests need, when missing (Debian/Ubuntu, as root).
# Usage: scripts/install-deps.sh [runtime|test|schemathesis]
#   schemathesis: only the API fuzzer (Schemathesis from PyPI, pinned, in a venv under
#   ~/.cache/amika/); prints the path of its `st` command. `test` installs it too.
set -euo pipefail
schemathesis_version=4.32.5
install_schemathesis() {
  local venv="${XDG_CACHE_HOME:-$HOME/.cache}/amika/schemathesis-$schemathesis_version"
  if [[ ! -x "$venv/bin/st" ]]; then
    echo "installing schemathesis $schemathesis_version into $venv ..." >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version" >&2
  fi
  echo "$venv/bin/st"
}
if [[ "${1:-runtime}" == schemathesis ]]; then
  install_schemathesis
  exit 0
fi
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
  # python3 with its venv module: the API fuzzer's venv (scripts/fuzz-api.sh).
  command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || want+=(python3-venv)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "amika needs these packages: ${missing[*]} — install them (e.g. sudo apt-get install -y ${missing[*]})" >&2
    [[ "${1:-runtime}" == test ]] && exit 1 || exit 0
  fi
  echo "installing ${missing[*]} ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ "${1:-runtime}" == test ]]; then
  install_schemathesis >/dev/null
  # The OpenAPI linter (scripts/lint-openapi.sh), from its lockfile.
  (cd "$(dirname "$0")/openapi-lint" && npm ci --no-audit --no-fund --silent)
fi
