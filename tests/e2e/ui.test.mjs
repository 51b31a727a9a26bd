// Browser tests of the web UI: Debian's headless Chromium driven by playwright-core against the
// real web server (bgm_web_test_server) on a fresh Postgres database, with the rows of
// background_migrations written by psql the way a worker would leave them.
//
// Needs: BGM_TEST_DATABASE_URL (an admin connection; scripts/test.sh sets it), BGM_WEB_SERVER
// (the bgm_web_test_server binary), psql and /usr/bin/chromium (or BGM_CHROMIUM).
// Run: tests/e2e/run.sh (installs playwright-core with npm ci, then node --test).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.join(HERE, 'artifacts');
const ADMIN_URL = process.env.BGM_TEST_DATABASE_URL;
const SERVER = process.env.BGM_WEB_SERVER;
const CHROMIUM = process.env.BGM_CHROMIUM || '/usr/bin/chromium';
const KEY = 'e2e-admin-key-0123456789';

const BUILTIN = '20241105_1200_backfill_observation_costs';
const TRACES = '20241024_1730_migrate_traces_from_pg_to_ch';
const OBSERVATIONS = '20241024_1737_migrate_observations_from_pg_to_ch';
const SCORES = '20241024_1738_migrate_scores_from_pg_to_ch';
const XSS = '<img src=x onerror="window.__xss = 1">';

if (!ADMIN_URL || !SERVER) {
  throw new Error('set BGM_TEST_DATABASE_URL and BGM_WEB_SERVER (tests/e2e/run.sh explains)');
}

// `url` (a postgres:// URL or a key=value conninfo) pointing at database `name`.
function withDatabase(url, name) {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const u = new URL(url);
    u.pathname = `/${name}`;
    return u.toString();
  }
  return `${url} dbname=${name}`;  // the last dbname wins
}

function psql(url, sql) {
  return execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
                      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

// Polls `check` (sync or async) until it returns a truthy value or `ms` pass.
async function eventually(check, ms = 15000, what = 'condition') {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

const dbName = `bgm_e2e_${process.pid}_${Date.now()}`;
const dbUrl = withDatabase(ADMIN_URL, dbName);
const sql = (text) => psql(dbUrl, text);
const column = (name, col) =>
  sql(`SELECT ${col}::text FROM background_migrations WHERE name = '${name}'`);

let server;
let serverLog = '';
let baseUrl;
let context;
let page;
let userDataDir;
const pageErrors = [];

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(SERVER, [], {
      env: {
        ...process.env,
        DATABASE_URL: dbUrl,
        ADMIN_API_KEY: KEY,
        BGMIGRATE_BIND: '127.0.0.1',
        BGMIGRATE_PORT: '0',
        BGMIGRATE_LEASE_SECONDS: '3600',  // a row marked running stays running during the test
        LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS: 'true',
        // The example application's background migrations (files).
        BGMIGRATE_MIGRATIONS_DIR: new URL('../../examples/langfuse/migrations', import.meta.url)
          .pathname,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${serverLog}`)), 30000);
    server.stdout.on('data', (chunk) => {
      serverLog += chunk;
      const m = /listening on (\d+)/.exec(serverLog);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    server.stderr.on('data', (chunk) => { serverLog += chunk; });
    server.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${serverLog}`));
    });
  });
}

const row = (name) => page.locator(`tr[data-testid="migration-row"][data-name="${name}"]`);
const badge = (name) => row(name).getByTestId('status-badge');

describe('background migrations page', () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    psql(ADMIN_URL, `CREATE DATABASE ${dbName}`);
    const port = await startServer();  // applies the schema, registers the built-in migration
    baseUrl = `http://127.0.0.1:${port}`;
    // Start from rows of our own (whatever the binary registered): one migration finished, the
    // others not started yet. Scripts are the names, as the built-in registry has them.
    sql('DELETE FROM background_migration_events; DELETE FROM background_migrations');
    sql(`INSERT INTO background_migrations
           (name, script, args, state, started_at, finished_at, attempts, rows_processed,
            rows_total_estimate, last_progress_at)
         VALUES ('${TRACES}', '${TRACES}', '{}',
                 '{"created_at": "2024-10-24 17:30:00", "id": "t-999"}',
                 now() - interval '25 minutes', now() - interval '3 minutes', 1, 1250000, 1250000,
                 now() - interval '3 minutes'),
                ('${OBSERVATIONS}', '${OBSERVATIONS}', '{}', '{}', NULL, NULL, 0, 0, NULL, NULL),
                ('${SCORES}', '${SCORES}', '{"batchSize": 5000}', '{}', NULL, NULL, 0, 0, NULL,
                 NULL),
                ('${BUILTIN}', '${BUILTIN}', '{}', '{}', NULL, NULL, 0, 0, NULL, NULL)`);
    sql(`INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
         VALUES ('${TRACES}', 'acquired', 'worker-a', '{"attempt": 1}'),
                ('${TRACES}', 'batch', 'worker-a', '{"rows": 5000, "ms": 812, "from": 0, "to": 5000}'),
                ('${TRACES}', 'finished', 'worker-a', '{"rows_processed": 1250000}')`);

    userDataDir = mkdtempSync(path.join(tmpdir(), 'bgm-e2e-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1440, height: 900 },
    });
    page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on('console', (msg) => {
      // A refused request (the 400 of a wrong batchSize) is logged as a failed load: expected.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
        pageErrors.push(`console: ${msg.text()}`);
      }
    });
    await page.goto(baseUrl);
  });

  after(async () => {
    if (context) await context.close();
    if (server && server.exitCode === null) {
      server.removeAllListeners('exit');
      const exited = new Promise((resolve) => server.on('exit', resolve));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    try {
      psql(ADMIN_URL, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    } catch (error) {
      console.error(`could not drop ${dbName}: ${error.message}`);
    }
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  test('shows the migrations and the statuses the database holds', async () => {
    await eventually(async () => (await row(SCORES).count()) === 1, 15000, 'the table');
    const names = await page.getByTestId('migration-name').allTextContents();
    assert.deepEqual(names, [TRACES, OBSERVATIONS, SCORES, BUILTIN]);  // run order
    assert.equal(await badge(TRACES).textContent(), 'finished');
    for (const name of [OBSERVATIONS, SCORES, BUILTIN]) {
      assert.equal(await badge(name).textContent(), 'pending');
    }
    assert.equal(await row(TRACES).getByTestId('progress-pct').textContent(), '100%');
    assert.match(await row(TRACES).getByTestId('progress-rows').textContent(),
                 /^1[,.\u202f\u00a0]?250[,.\u202f\u00a0]?000 \/ 1[,.\u202f\u00a0]?250[,.\u202f\u00a0]?000 rows$/);
    assert.equal(await row(SCORES).getByTestId('args').textContent(), 'batchSize: 5000');
    assert.equal(await row(TRACES).getByTestId('args').textContent(), 'defaults');
    assert.equal(await row(TRACES).getByTestId('state').textContent(),
                 'created_at: 2024-10-24 17:30:00id: t-999');
    assert.equal(await page.getByTestId('count-finished').textContent(), '1');
    assert.equal(await page.getByTestId('count-pending').textContent(), '3');
    // Nothing runs or failed: no indicator.
    assert.equal(await page.getByTestId('status-indicator').isVisible(), false);
    // A real table with header cells.
    assert.equal(await page.locator('table#migrations thead th').count(), 7);
  });

  test('the header indicator appears while a migration runs', async () => {
    sql(`UPDATE background_migrations
         SET worker_id = 'worker-b', locked_at = now(), started_at = now() - interval '90 seconds',
             attempts = 1, rows_processed = 420000, rows_total_estimate = 1000000,
             state = '{"start_time": "2024-05-02 12:00:00", "id": "o-42"}',
             last_progress_at = now()
         WHERE name = '${OBSERVATIONS}'`);
    sql(`INSERT INTO background_migration_events (migration_name, at, kind, worker_id, detail)
         SELECT '${OBSERVATIONS}', now() - (4 - g) * interval '1 second', 'batch', 'worker-b',
                jsonb_build_object('rows', 5000, 'ms', 700)
         FROM generate_series(1, 3) g`);
    const indicator = page.getByTestId('status-indicator');
    await indicator.waitFor({ state: 'visible', timeout: 15000 });
    assert.match(await indicator.textContent(), /1 running/);
    assert.equal(await indicator.getAttribute('href'), '#migrations');
    assert.equal(await badge(OBSERVATIONS).textContent(), 'running');
    assert.equal(await row(OBSERVATIONS).getByTestId('progress-pct').textContent(), '42%');
    assert.match(await row(OBSERVATIONS).getByTestId('rate').textContent(), /rows\/s$/);
    assert.match(await row(OBSERVATIONS).getByTestId('eta').textContent(), /^ETA /);
  });

  test('a chunked copy shows its chunks and the rate of each worker', async () => {
    // OBSERVATIONS (running on worker-b above) split into 10 chunks: 7 done, 2 running on two
    // threads, 1 failed with its error.
    sql(`INSERT INTO background_migration_chunks
           (migration_name, chunk, lower_bound, upper_bound, status, worker_id, attempts,
            rows_processed, cursor, last_error)
         SELECT '${OBSERVATIONS}', g,
                CASE WHEN g = 0 THEN NULL ELSE jsonb_build_object('id', 'o-' || g * 1000) END,
                CASE WHEN g = 9 THEN NULL ELSE jsonb_build_object('id', 'o-' || (g + 1) * 1000) END,
                CASE WHEN g < 7 THEN 'done' WHEN g < 9 THEN 'running' ELSE 'failed' END,
                CASE WHEN g IN (7, 8) THEN 'worker-b#' || (g - 7) END,
                CASE WHEN g = 9 THEN 3 ELSE 1 END,
                CASE WHEN g < 7 THEN 1000 WHEN g < 9 THEN 400 ELSE 0 END,
                CASE WHEN g < 9 THEN jsonb_build_object('id', 'o-' || g * 1000 + 399) END,
                CASE WHEN g = 9 THEN 'value ''x'' of column level cannot be converted to ' ||
                                     'Enum8: ${XSS}' END
         FROM generate_series(0, 9) g`);
    // Fresh batches: the rate is measured over the last minute.
    sql(`INSERT INTO background_migration_events (migration_name, at, kind, worker_id, detail)
         SELECT '${OBSERVATIONS}', now() - (4 - g) * interval '1 second', 'batch', 'worker-b',
                jsonb_build_object('rows', 5000, 'ms', 700)
         FROM generate_series(1, 3) g`);
    await page.setViewportSize({ width: 1280, height: 900 });
    const summary = row(OBSERVATIONS).getByTestId('chunk-summary');
    await eventually(async () => (await summary.count()) === 1, 15000, 'the chunk summary');
    assert.equal(await summary.textContent(), 'chunks 7/10 done, 2 running, 1 failed');
    const parts = row(OBSERVATIONS).locator('[data-testid="chunk-bar"] .chunk-part');
    assert.deepEqual(await parts.evaluateAll((nodes) => nodes.map((n) => n.dataset.state)),
                     ['done', 'running', 'failed']);
    assert.match(await row(OBSERVATIONS).getByTestId('worker-rate').textContent(),
                 /^worker-b [\d,.\u202f\u00a0]+ rows\/s$/);

    const chunkRows = page.locator(`tr[data-chunks-for="${OBSERVATIONS}"] [data-testid="chunk-row"]`);
    await eventually(async () => (await chunkRows.count()) === 3, 10000, 'the chunk rows');
    assert.deepEqual(await chunkRows.evaluateAll((rs) => rs.map((r) => r.dataset.chunk)),
                     ['7', '8', '9']);
    assert.equal(await chunkRows.nth(0).getByTestId('chunk-worker').textContent(), 'worker-b#0');
    assert.equal(await chunkRows.nth(1).getByTestId('chunk-worker').textContent(), 'worker-b#1');
    const error = chunkRows.nth(2).getByTestId('chunk-error');
    const errorText = `value 'x' of column level cannot be converted to Enum8: ${XSS}`;
    assert.equal(await error.textContent(), errorText);
    assert.equal(await error.getAttribute('title'), errorText);  // the whole error on hover
    assert.match(await chunkRows.nth(2).textContent(), /^9\[\{"id":"o-9000"\}, end\)failed—3/);
    assert.equal(await page.locator(`tr[data-chunks-for="${OBSERVATIONS}"] img`).count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);

    // Readable at 1280 px: nothing wider than the window.
    await row(OBSERVATIONS).scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, 'chunks.png') });
    const wide = await page.evaluate(() => Array.from(document.querySelectorAll('body *'))
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
      .map((e) => `${e.tagName.toLowerCase()}.${e.className}`).slice(0, 5));
    assert.deepEqual(wide, [], 'elements wider than 1280 px');

    // A chunk that finishes leaves the list; the summary follows.
    sql(`UPDATE background_migration_chunks SET status = 'done', worker_id = NULL
         WHERE migration_name = '${OBSERVATIONS}' AND chunk = 7`);
    await eventually(async () => (await chunkRows.count()) === 2, 10000, 'chunk 7 to leave');
    assert.equal(await summary.textContent(), 'chunks 8/10 done, 1 running, 1 failed');
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  test('the header indicator appears for a failed migration', async () => {
    sql(`UPDATE background_migrations
         SET state = '{"timestamp": "2024-10-24", "id": "s-7"}', started_at = now() - interval '10 minutes',
             failed_at = now() - interval '1 minute', attempts = 2, rows_processed = 300000,
             rows_total_estimate = 2000000,
             failed_reason = 'Failed to convert rust String into napi string ${XSS}'
         WHERE name = '${SCORES}'`);
    sql(`INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
         VALUES ('${SCORES}', 'failed', 'worker-c',
                 '{"reason": "Failed to convert rust String into napi string"}')`);
    const indicator = page.getByTestId('status-indicator');
    await eventually(async () => /1 failed/.test(await indicator.textContent()), 15000,
                     'the failed indicator');
    assert.equal(await indicator.getAttribute('data-tone'), 'failed');
    assert.match(await indicator.textContent(), /1 running/);  // the running one still counts
    assert.equal(await badge(SCORES).textContent(), 'failed');
    // Data is shown as text, never as markup.
    assert.equal(await row(SCORES).getByTestId('failed-reason').textContent(),
                 `Failed to convert rust String into napi string ${XSS}`);
    assert.equal(await row(SCORES).locator('img').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    // The indicator leads to the table.
    await indicator.click();
    assert.equal(new URL(page.url()).hash, '#migrations');
  });

  test('a migration waiting for an unreachable server says so, with its reason', async () => {
    sql(`UPDATE background_migrations
         SET worker_id = 'worker-d', locked_at = now(), started_at = now() - interval '5 minutes',
             attempts = 1, rows_processed = 1200,
             waiting_reason = 'could not connect to ClickHouse at http://10.0.0.9:8123: Connection refused',
             waiting_since = now() - interval '30 seconds', next_attempt_at = now() + interval '8 seconds'
         WHERE name = '${BUILTIN}'`);
    await eventually(async () => (await badge(BUILTIN).textContent()) === 'waiting', 15000,
                     'the waiting badge');
    assert.match(await row(BUILTIN).getByTestId('waiting-reason').textContent(),
                 /^could not connect to ClickHouse at http:\/\/10\.0\.0\.9:8123: Connection refusedwaiting since .+; next try .+$/);
    assert.equal(await page.getByTestId('count-waiting').textContent(), '1');
    const indicator = page.getByTestId('status-indicator');
    assert.match(await indicator.textContent(), /1 waiting for a database/);
    assert.equal(await row(BUILTIN).getByTestId('action-pause').count(), 1);  // can be paused
  });

  test('a throttled migration shows the signal, its value and threshold; screenshot saved', async () => {
    sql(`UPDATE background_migrations
         SET worker_id = 'worker-t', locked_at = now(), started_at = now() - interval '5 minutes',
             attempts = 1, rows_processed = 1500, waiting_reason = NULL, waiting_since = NULL,
             next_attempt_at = NULL,
             throttle = '{"signal": "clickhouse_parts", "what": "active parts in the busiest partition of traces", "value": 163, "threshold": 100}',
             throttled_since = now() - interval '2 minutes'
         WHERE name = '${BUILTIN}'`);
    await eventually(async () => (await badge(BUILTIN).textContent()) === 'throttled', 15000,
                     'the throttled badge');
    assert.match(await row(BUILTIN).getByTestId('throttle-reason').textContent(),
                 /^Throttled: active parts in the busiest partition of traces is 163, at or above 100since [A-Z][a-z]{2} \d+, \d\d:\d\d [AP]M; goes on by itself when the signal falls below$/);
    assert.equal(await page.getByTestId('count-throttled').textContent(), '1');
    assert.match(await page.getByTestId('status-indicator').textContent(), /1 throttled/);
    assert.equal(await row(BUILTIN).getByTestId('action-pause').count(), 1);
    assert.equal(await row(BUILTIN).getByTestId('action-cancel').count(), 1);
    mkdirSync(ARTIFACTS, { recursive: true });
    await row(BUILTIN).screenshot({ path: path.join(ARTIFACTS, 'ui-throttled.png') });
    // Back to waiting, as the test before left it.
    sql(`UPDATE background_migrations SET throttle = NULL, throttled_since = NULL,
             waiting_reason = 'could not connect to ClickHouse at http://10.0.0.9:8123: Connection refused',
             waiting_since = now() - interval '30 seconds', next_attempt_at = now() + interval '8 seconds'
         WHERE name = '${BUILTIN}'`);
    await eventually(async () => (await badge(BUILTIN).textContent()) === 'waiting', 15000,
                     'waiting again');
  });

  test('expanding a row shows its recent events', async () => {
    const toggle = row(TRACES).getByTestId('toggle-events');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    const events = page.locator(`tr[data-events-for="${TRACES}"] [data-testid="event-row"]`);
    await eventually(async () => (await events.count()) === 3, 10000, 'the events');
    assert.match(await events.nth(0).textContent(), /finished/);
    assert.match(await events.nth(1).textContent(), /batch.*rows: 5000/);
    await toggle.click();
    assert.equal(await page.locator(`tr[data-events-for="${TRACES}"]`).count(), 0);
  });

  test('the throughput chart draws a point per batch and shades throttled and waiting periods', async () => {
    sql(`INSERT INTO background_migration_events (migration_name, at, kind, worker_id, detail)
         VALUES ('${SCORES}', now() - interval '10 minutes', 'acquired', 'worker-s', '{"attempt": 1}'),
                ('${SCORES}', now() - interval '9 minutes', 'batch', 'worker-s', '{"rows": 5000, "ms": 1000}'),
                ('${SCORES}', now() - interval '8 minutes', 'batch', 'worker-s', '{"rows": 5000, "ms": 500}'),
                ('${SCORES}', now() - interval '7 minutes', 'throttled', 'worker-s',
                 '{"signal": "clickhouse_parts", "what": "active parts in the busiest partition of scores", "value": 120, "threshold": 100}'),
                ('${SCORES}', now() - interval '5 minutes', 'throttle_ended', 'worker-s', '{"signal": "clickhouse_parts", "seconds": 120}'),
                ('${SCORES}', now() - interval '4 minutes', 'batch', 'worker-s', '{"rows": 5000, "ms": 2000}'),
                ('${SCORES}', now() - interval '3 minutes', 'waiting', 'worker-s', '{"reason": "could not connect to ClickHouse", "retry_in_s": 1}'),
                ('${SCORES}', now() - interval '2 minutes', 'recovered', 'worker-s', '{"outage_s": 60}'),
                ('${SCORES}', now() - interval '1 minutes', 'batch', 'worker-s', '{"rows": 2500, "ms": 500}')`);
    const toggle = row(SCORES).getByTestId('toggle-events');
    await toggle.click();
    const chart = page.locator(`tr[data-events-for="${SCORES}"] [data-testid="throughput-chart"]`);
    await chart.waitFor();
    assert.equal(await chart.getAttribute('data-points'), '4');
    assert.equal(await chart.locator('[data-testid="rate-point"]').count(), 4);
    assert.equal(await chart.locator('[data-testid="period-throttled"]').count(), 1);
    assert.equal(await chart.locator('[data-testid="period-waiting"]').count(), 1);
    assert.match(await chart.getAttribute('aria-label'),
                 /^Throughput of .+: 4 batches, the last at 5,000 rows\/s; throttled 1 times; waited for a database 1 times$/);
    // The throttled period lies between the second and the third point.
    const xs = await chart.locator('[data-testid="rate-point"]').evaluateAll(
      (nodes) => nodes.map((n) => Number(n.getAttribute('cx'))));
    const shaded = await chart.locator('[data-testid="period-throttled"]').evaluate(
      (n) => [Number(n.getAttribute('x')), Number(n.getAttribute('x')) + Number(n.getAttribute('width'))]);
    assert.ok(xs[1] < shaded[0] && shaded[1] < xs[2], `throttled ${shaded} between ${xs[1]} and ${xs[2]}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.locator(`tr[data-events-for="${SCORES}"]`).screenshot({ path: path.join(ARTIFACTS, 'ui-chart.png') });
    await toggle.click();
  });

  test('the events section lists every migration\'s events, filtered by migration and kind', async () => {
    const shown = page.getByTestId('all-event-row');
    await eventually(async () => (await shown.count()) >= 12, 15000, 'the events of all migrations');
    await page.getByTestId('events-migration').selectOption(SCORES);
    await page.getByTestId('events-kind').selectOption('throttled,throttle_ended');
    await eventually(async () => (await shown.count()) === 2, 10000, 'the filtered events');
    const texts = await shown.allTextContents();
    assert.match(texts[0], new RegExp(`${SCORES}throttle_endedworker-sseconds: 120 · signal: clickhouse_parts`));
    assert.match(texts[1], new RegExp(`${SCORES}throttledworker-s`));
    await page.getByTestId('events-kind').selectOption('');
    await page.getByTestId('events-migration').selectOption('');
    await eventually(async () => (await shown.count()) >= 12, 10000, 'all events again');
  });

  test('editing batchSize with the admin key saves it, and a wrong value shows the error', async () => {
    await row(BUILTIN).getByTestId('action-edit-args').click();
    const input = page.getByTestId('args-input');
    await input.fill('{"batchSize": 2500}');
    await page.getByTestId('args-save').click();
    // The key is asked for once, in a labelled password field.
    const dialog = page.getByTestId('key-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'key-dialog.png') });
    const keyInput = page.getByLabel('Admin API key', { exact: true });
    assert.equal(await keyInput.getAttribute('type'), 'password');
    await keyInput.fill(KEY);
    await page.getByTestId('key-save').click();
    await eventually(() => column(BUILTIN, 'args') === '{"batchSize": 2500}', 10000,
                     'the saved args');
    await eventually(async () => (await page.getByTestId('args-input').count()) === 0, 5000,
                     'the editor to close');
    await eventually(async () => (await row(BUILTIN).getByTestId('args').textContent()) ===
                                 'batchSize: 2500', 10000, 'the table to show the args');
    // Kept for this tab only.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('bgmigrate.adminKey')), KEY);
    assert.equal(await page.evaluate(() => localStorage.length), 0);

    // A value the migration refuses: the server's message appears inline, nothing is saved.
    await row(BUILTIN).getByTestId('action-edit-args').click();
    await page.getByTestId('args-input').fill('{"batchSize": -1}');
    await page.getByTestId('args-save').click();
    const error = page.getByTestId('args-error');
    await error.waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await error.textContent(),
                 'batchSize must be an integer in [1, 100000], got -1');
    assert.equal(await page.getByTestId('args-input').getAttribute('aria-invalid'), 'true');
    await row(BUILTIN).scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, 'args-error.png') });
    assert.equal(await dialog.isVisible(), false);  // the key was not asked again
    assert.equal(column(BUILTIN, 'args'), '{"batchSize": 2500}');
    await page.getByTestId('args-cancel').click();
  });

  test('retry on a failed migration makes it pending again', async () => {
    await row(SCORES).getByTestId('action-retry').click();
    await eventually(() => column(SCORES, 'failed_at') === '', 10000, 'failed_at cleared');
    assert.equal(column(SCORES, 'state'), '{"id": "s-7", "timestamp": "2024-10-24"}');
    await eventually(async () => (await badge(SCORES).textContent()) === 'pending', 10000,
                     'the pending badge');
    assert.equal(sql(`SELECT detail->>'by' FROM background_migration_events
                      WHERE migration_name = '${SCORES}' AND kind = 'retried'`), 'api');
    // No migration failed any more; the running one still shows.
    const indicator = page.getByTestId('status-indicator');
    await eventually(async () => !/failed/.test(await indicator.textContent()), 10000,
                     'the indicator to drop "failed"');
    assert.match(await indicator.textContent(), /1 running/);
  });

  test('cancel and skip ask first, naming what they do, and show the outcome', async () => {
    // Cancel: the confirmation names the consequence; dismissed, nothing changes.
    let message = '';
    page.once('dialog', (d) => { message = d.message(); d.dismiss(); });
    await row(SCORES).getByTestId('action-cancel').click();
    await eventually(() => message !== '', 5000, 'the cancel confirmation');
    assert.equal(message, `Cancel ${SCORES}? A running batch finishes first, then it stops and ` +
                          'keeps its cursor. It runs again only when someone retries it; ' +
                          'migrations that need it wait until then.');
    assert.equal(column(SCORES, 'cancelled_at'), '');
    page.once('dialog', (d) => d.accept());
    await row(SCORES).getByTestId('action-cancel').click();
    await eventually(async () => (await badge(SCORES).textContent()) === 'cancelled', 10000,
                     'the cancelled badge');
    assert.notEqual(column(SCORES, 'cancelled_at'), '');
    assert.match(await row(SCORES).getByTestId('cancelled-reason').textContent(),
                 /^Cancelled .+retry it to continue from its cursor$/);

    // Skip: the prompt says no row will be copied; the reason is kept and shown.
    let prompt = '';
    page.once('dialog', (d) => { prompt = d.message(); d.accept('scores copied by hand'); });
    await row(SCORES).getByTestId('action-skip').click();
    await eventually(async () => (await badge(SCORES).textContent()) === 'skipped', 10000,
                     'the skipped badge');
    assert.match(prompt, /^Skip .+ It will be marked done WITHOUT copying or changing any row/);
    assert.equal(column(SCORES, 'skipped_reason'), 'scores copied by hand');
    assert.equal(await row(SCORES).getByTestId('skipped-reason').textContent(),
                 'Skipped: scores copied by hand');
    assert.equal(sql(`SELECT string_agg(kind || ':' || (detail->>'by'), ',' ORDER BY id)
                      FROM background_migration_events
                      WHERE migration_name = '${SCORES}' AND kind IN ('cancelled', 'skipped')`),
                 'cancelled:api,skipped:api');
    assert.equal(await page.getByTestId('count-skipped').textContent(), '1');
    await row(SCORES).scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, 'skipped.png') });
  });

  test('reads well on a laptop and on a phone; screenshots are saved', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // One failed migration in the picture, as an operator would meet it.
    sql(`UPDATE background_migrations
         SET started_at = now() - interval '4 minutes', failed_at = now() - interval '30 seconds',
             attempts = 1, rows_processed = 64000, rows_total_estimate = 250000,
             state = '{"start_time": "2024-05-02 12:00:00", "id": "o-64000"}',
             failed_reason = 'canceling statement due to statement timeout (SQLSTATE 57014); '
                             || 'lower batchSize and retry'
         WHERE name = '${BUILTIN}'`);
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.goto(baseUrl);  // a fresh load: no toasts left from the actions above
    await page.getByTestId('migration-row').first().waitFor();
    await row(TRACES).getByTestId('toggle-events').click();
    await page.locator(`tr[data-events-for="${TRACES}"] [data-testid="event-row"]`).first()
      .waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui.png'), fullPage: true });

    // A 1280-px laptop: the table fits its card and no action button is cut off.
    await page.setViewportSize({ width: 1280, height: 800 });
    const fit = await page.evaluate(() => {
      const box = document.querySelector('.table-scroll').getBoundingClientRect();
      const table = document.querySelector('table.migrations').getBoundingClientRect();
      return {
        tableBeyond: Math.round(table.right - Math.min(box.right, window.innerWidth)),
        cut: Array.from(document.querySelectorAll('[data-testid^="action-"]'))
          .filter((b) => b.getBoundingClientRect().right > Math.min(box.right, window.innerWidth) + 0.5)
          .map((b) => b.textContent.trim()),
        buttons: document.querySelectorAll('[data-testid^="action-"]').length,
      };
    });
    assert.ok(fit.tableBeyond <= 0, `the table reaches ${fit.tableBeyond} px past its card at 1280 px`);
    assert.ok(fit.buttons >= 8, `only ${fit.buttons} action buttons on the page`);
    assert.deepEqual(fit.cut, [], 'action buttons cut off at 1280 px');
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-1280.png'), fullPage: true });

    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-phone.png'), fullPage: true });
    // Nothing wider than the screen: the table stacks into cards.
    const wide = await page.evaluate(() => Array.from(document.querySelectorAll('body *'))
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
      .map((e) => `${e.tagName.toLowerCase()}.${e.className}`).slice(0, 5));
    assert.deepEqual(wide, [], 'elements wider than a phone screen');
    assert.equal(await page.getByTestId('status-indicator').isVisible(), true);
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  test('the page loaded no script error and broke no content-security rule', () => {
    assert.deepEqual(pageErrors, []);
  });
});
