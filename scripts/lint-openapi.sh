#!/usr/bin/env bash
# Lint docs/openapi.json (the document the server serves at /openapi.json) with Redocly CLI's
# recommended rules; any error fails. The linter is pinned in scripts/openapi-lint/package.json
# and installed from its lockfile (npm ci) on first use.
set -euo pipefail
cd "$(dirname "$0")/openapi-lint"
[[ -x node_modules/.bin/redocly ]] || npm ci --no-audit --no-fund --silent
node_modules/.bin/redocly lint ../../docs/openapi.json --config redocly.yaml --format stylish
