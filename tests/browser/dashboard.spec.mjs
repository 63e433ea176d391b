// Browser test of the lattice dashboard (issue 13): `wash up` runs a kvcounter app
// (HTTP server and in-memory key-value providers, free ports, keys in a temp dir) with
// `--dashboard`; headless Debian chromium (playwright-core, which downloads nothing)
// opens the page and checks it shows the host, the kvcounter actor whose call count
// rises by exactly the calls made while the page is open, and its links. The screenshot
// goes to tests/artifacts/dashboard.png (dashboard-failure.png when a step fails).
//
// Needs: target/debug/wash (`cargo build -p wash-cli`), actors/target/wasm/kvcounter.wasm
// (`bash scripts/build-actors.sh`), /usr/bin/chromium and `npm ci` here. Run it with
// `bash tests/browser/run.sh` (or `node --test tests/browser/dashboard.spec.mjs`).
// Environment: WASH_BIN (default target/debug/wash), CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const washBin = process.env.WASH_BIN || path.join(root, 'target/debug/wash');
const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';
const kvcounter = path.join(root, 'actors/target/wasm/kvcounter.wasm');
const artifacts = path.join(root, 'tests/artifacts');
const screenshot = path.join(artifacts, 'dashboard.png');
const failureScreenshot = path.join(artifacts, 'dashboard-failure.png');

const READY_LINE = 'ready; press Ctrl-C to stop';
const READY_TIMEOUT_MS = 45_000;
const STEP_TIMEOUT_MS = 15_000;

// The network here is closed: nothing in the browser may reach out on its own.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

let tmp; // temp dir: manifest, keys, browser profile
let wash; // { child, output(), exited, running }
let context; // playwright persistent context
let httpPort;
let dashboardUrl;
let hostId;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function manifest(port) {
  return `name: counter
actors:
  - name: kvcounter
    path: ${JSON.stringify(kvcounter)}
    instances: 2
    capabilities: [wasmcloud:httpserver, wasmcloud:keyvalue]
providers:
  - name: http
    builtin: httpserver
  - name: kv
    builtin: keyvalue
links:
  - actor: kvcounter
    provider: http
    values: { port: "${port}" }
  - actor: kvcounter
    provider: kv
    values: { backend: memory }
`;
}

/** Starts `wash up MANIFEST --dashboard ADDR`; resolves with its stdout once ready. */
function startWash(manifestPath, dashboardAddr) {
  const child = spawn(washBin, ['up', manifestPath, '--dashboard', dashboardAddr], {
    cwd: tmp,
    env: { ...process.env, WASH_KEYS: path.join(tmp, 'keys'), NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk) => {
    log = (log + chunk).slice(-20_000);
  };
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const handle = { child, output: () => log, exited, running: true };
  exited.then(() => {
    handle.running = false;
  });
  child.stderr.setEncoding('utf8').on('data', keep);
  const ready = new Promise((resolve, reject) => {
    let stdout = '';
    child.on('error', (err) => reject(new Error(`cannot start ${washBin}: ${err.message}`)));
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      keep(chunk);
      stdout += chunk;
      if (stdout.includes(READY_LINE)) {
        resolve(stdout);
      }
    });
    exited.then(({ code, signal }) =>
      reject(new Error(`wash up exited (code ${code}, signal ${signal}) before it was ready:\n${log}`)),
    );
    setTimeout(
      () => reject(new Error(`wash up not ready after ${READY_TIMEOUT_MS / 1000} s:\n${log}`)),
      READY_TIMEOUT_MS,
    ).unref();
  });
  return { handle, ready };
}

async function stopWash() {
  if (!wash || !wash.running) {
    return;
  }
  wash.child.kill('SIGTERM');
  const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 10_000).unref());
  if ((await Promise.race([wash.exited, timeout])) === 'timeout') {
    console.error('wash up did not stop on SIGTERM within 10 s; killing it');
    wash.child.kill('SIGKILL');
    await wash.exited;
  }
}

process.on('exit', () => {
  if (wash && wash.running) {
    wash.child.kill('SIGKILL');
  }
});

/** `n` requests to the kvcounter; each must answer 200 with a JSON counter. */
async function callCounter(n) {
  for (let i = 0; i < n; i++) {
    const response = await fetch(`http://127.0.0.1:${httpPort}/`);
    const body = await response.text();
    assert.equal(response.status, 200, `kvcounter answered ${response.status}: ${body}`);
    assert.match(body, /"counter":\d+/);
  }
}

before(async () => {
  const missing = [
    [washBin, 'run `cargo build -p wash-cli`'],
    [chromiumBin, 'run scripts/setup.sh (installs Debian chromium)'],
    [kvcounter, 'run `bash scripts/build-actors.sh`'],
  ].filter(([file]) => !existsSync(file));
  assert.deepEqual(
    missing.map(([file, fix]) => `${file} is missing: ${fix}`),
    [],
    'the browser test cannot run',
  );
  rmSync(screenshot, { force: true });
  rmSync(failureScreenshot, { force: true });

  tmp = mkdtempSync(path.join(os.tmpdir(), 'nimbus-dashboard-browser-'));
  httpPort = await freePort();
  const dashboardPort = await freePort();
  const manifestPath = path.join(tmp, 'app.yaml');
  writeFileSync(manifestPath, manifest(httpPort));
  const started = startWash(manifestPath, `127.0.0.1:${dashboardPort}`);
  wash = started.handle;
  const stdout = await started.ready;
  hostId = (stdout.match(/^host (N[A-Z0-9]{55}) /m) || [])[1];
  assert.ok(hostId, `no host id in wash up's output:\n${stdout}`);
  dashboardUrl = (stdout.match(/^dashboard at (http:\/\/\S+)$/m) || [])[1];
  assert.equal(dashboardUrl, `http://127.0.0.1:${dashboardPort}/`, `wash up printed:\n${stdout}`);

  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: chromiumBin,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
});

after(async () => {
  try {
    if (context) {
      await context.close();
    }
  } finally {
    await stopWash();
    if (tmp) {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
});

test('dashboard: a host, an actor whose call count rises with the calls made, and links', async (t) => {
  const page = context.pages()[0] || (await context.newPage());
  const pageProblems = [];
  page.on('pageerror', (err) => pageProblems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      pageProblems.push(`console error: ${msg.text()}`);
    }
  });

  const opRow = page.locator('[data-testid=op-row][data-actor-name=kvcounter][data-operation=HandleRequest]');
  const shownCalls = async () => Number((await opRow.getByTestId('op-calls').textContent()).replace(/,/g, ''));

  let currentStep = '';
  const step = async (name, fn) => {
    currentStep = name;
    t.diagnostic(`step: ${name}`);
    await fn();
  };

  try {
    await step('calls before the page opens', () => callCounter(3));

    await step('open the dashboard: it is live and shows the host', async () => {
      await page.goto(dashboardUrl);
      assert.equal(await page.title(), 'nimbus dashboard');
      await page.getByTestId('live').filter({ hasText: /^live$/ }).waitFor();
      const card = page.locator(`[data-testid=host-card][data-host-id="${hostId}"]`);
      await card.waitFor();
      assert.equal(await card.getByTestId('host-id').textContent(), hostId);
      assert.equal(await page.getByTestId('host-card').count(), 1);
      assert.equal(await page.locator('#mode').textContent(), 'standalone');
      const actorRow = card.locator('[data-testid=actor-row][data-actor-name=kvcounter]');
      await actorRow.waitFor();
      assert.equal(await actorRow.getByTestId('actor-instances').textContent(), '2');
    });

    let before = 0;
    await step('the kvcounter row shows the calls made so far', async () => {
      await opRow.waitFor();
      await page.waitForFunction(
        () => {
          const cell = document.querySelector(
            '[data-testid=op-row][data-actor-name=kvcounter][data-operation=HandleRequest] [data-testid=op-calls]',
          );
          return cell && Number(cell.textContent.replace(/,/g, '')) >= 3;
        },
        null,
        { timeout: STEP_TIMEOUT_MS },
      );
      before = await shownCalls();
      assert.equal(before, 3, 'the three calls made before the page opened');
    });

    const more = 5;
    await step(`${more} more calls: the count on the page rises to ${before + more}`, async () => {
      await callCounter(more);
      await page.waitForFunction(
        (expected) => {
          const cell = document.querySelector(
            '[data-testid=op-row][data-actor-name=kvcounter][data-operation=HandleRequest] [data-testid=op-calls]',
          );
          return cell && Number(cell.textContent.replace(/,/g, '')) === expected;
        },
        before + more,
        { timeout: STEP_TIMEOUT_MS },
      );
      assert.equal(await shownCalls(), before + more);
      assert.equal(await opRow.getByTestId('op-errors').textContent(), '0');
      assert.match(await opRow.getByTestId('op-p50').textContent(), /\d+(\.\d+)? (µs|ms)/);
    });

    await step('the links of kvcounter are listed', async () => {
      const links = page.locator('[data-testid=link-row][data-actor-name=kvcounter]');
      await links.first().waitFor();
      const contracts = (await links.getByTestId('link-contract').allTextContents()).sort();
      assert.deepEqual(contracts, ['wasmcloud:httpserver', 'wasmcloud:keyvalue']);
    });

    await step('the events list shows the actor starting', async () => {
      await page.getByTestId('event').filter({ hasText: 'actors_started' }).first().waitFor();
    });

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok(existsSync(screenshot), `no screenshot at ${screenshot}`);
    assert.ok(statSync(screenshot).size > 0, 'the screenshot is empty');

    currentStep = 'page health';
    assert.deepEqual(pageProblems, [], 'the page logged no errors');
  } catch (err) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: failureScreenshot, fullPage: true }).catch(() => {});
    err.message =
      `step "${currentStep}" failed: ${err.message}\n` +
      (pageProblems.length ? `  page problems: ${pageProblems.join('; ')}\n` : '') +
      `  screenshot: ${failureScreenshot}\n  wash up output:\n${wash ? wash.output() : ''}`;
    throw err;
  }
});
