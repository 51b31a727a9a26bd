#!/usr/bin/env bash
# Browser tests of the web UI (ui.test.mjs): installs playwright-core from package-lock.json
# (npm ci, only when node_modules is missing or the lock changed), then runs node's built-in test
# runner, which prints the summary (tests, pass, fail).
# Needs node (20+), npm, psql and /usr/bin/chromium: `scripts/deps.sh --browser` installs them.
# Environment: BGM_TEST_DATABASE_URL (admin connection to a Postgres, as scripts/test.sh sets
# it) and BGM_WEB_SERVER (path to the bgm_web_test_server binary).
set -euo pipefail
cd "$(dirname "$0")"

: "${BGM_TEST_DATABASE_URL:?set BGM_TEST_DATABASE_URL (scripts/test.sh does)}"
: "${BGM_WEB_SERVER:?set BGM_WEB_SERVER to the bgm_web_test_server binary}"
for tool in node npm psql; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is missing; run scripts/deps.sh --browser" >&2; exit 1; }
done
[[ -x "${BGM_CHROMIUM:-/usr/bin/chromium}" ]] ||
  { echo "e2e: chromium is missing; run scripts/deps.sh --browser" >&2; exit 1; }

# Reinstall only when the lock file differs from the one installed last time.
stamp=node_modules/.bgm-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -d node_modules/playwright-core || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "e2e: installing playwright-core (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

mkdir -p artifacts
exec node --test --test-reporter=spec ui.test.mjs
