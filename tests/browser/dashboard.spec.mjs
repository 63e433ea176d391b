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
// `wash up`, chromium and the teardown come from harness.mjs, shared with the other spec.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  artifacts,
  freePort,
  launchChromium,
  requireFiles,
  root,
  startWash,
  stepper,
  tearDown,
  watchPage,
} from './harness.mjs';

const kvcounter = path.join(root, 'actors/target/wasm/kvcounter.wasm');
const screenshot = path.join(artifacts, 'dashboard.png');
const failureScreenshot = path.join(artifacts, 'dashboard-failure.png');

const STEP_TIMEOUT_MS = 15_000;

let tmp; // temp dir: manifest, keys, browser profile
let wash; // wash up's handle from startWash
let context; // playwright persistent context
let httpPort;
let dashboardUrl;
let hostId;

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
  requireFiles([[kvcounter, 'run `bash scripts/build-actors.sh`']]);
  rmSync(screenshot, { force: true });
  rmSync(failureScreenshot, { force: true });

  tmp = mkdtempSync(path.join(os.tmpdir(), 'nimbus-dashboard-browser-'));
  httpPort = await freePort();
  const dashboardPort = await freePort();
  const manifestPath = path.join(tmp, 'app.yaml');
  writeFileSync(manifestPath, manifest(httpPort));
  const started = startWash(['up', manifestPath, '--dashboard', `127.0.0.1:${dashboardPort}`], tmp);
  wash = started.handle;
  const stdout = await started.ready;
  hostId = (stdout.match(/^host (N[A-Z0-9]{55}) /m) || [])[1];
  assert.ok(hostId, `no host id in wash up's output:\n${stdout}`);
  dashboardUrl = (stdout.match(/^dashboard at (http:\/\/\S+)$/m) || [])[1];
  assert.equal(dashboardUrl, `http://127.0.0.1:${dashboardPort}/`, `wash up printed:\n${stdout}`);

  context = await launchChromium(path.join(tmp, 'profile'), {
    viewport: { width: 1280, height: 900 },
    stepTimeoutMs: STEP_TIMEOUT_MS,
  });
});

after(() => tearDown({ context, wash, tmp }));

test('dashboard: a host, an actor whose call count rises with the calls made, and links', async (t) => {
  const page = context.pages()[0] || (await context.newPage());
  const pageProblems = watchPage(page);

  const opRow = page.locator('[data-testid=op-row][data-actor-name=kvcounter][data-operation=HandleRequest]');
  const shownCalls = async () => Number((await opRow.getByTestId('op-calls').textContent()).replace(/,/g, ''));

  const steps = stepper(t);

  try {
    await steps.run('calls before the page opens', () => callCounter(3));

    await steps.run('open the dashboard: it is live and shows the host', async () => {
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
    await steps.run('the kvcounter row shows the calls made so far', async () => {
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
    await steps.run(`${more} more calls: the count on the page rises to ${before + more}`, async () => {
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

    await steps.run('the links of kvcounter are listed', async () => {
      const links = page.locator('[data-testid=link-row][data-actor-name=kvcounter]');
      await links.first().waitFor();
      const contracts = (await links.getByTestId('link-contract').allTextContents()).sort();
      assert.deepEqual(contracts, ['wasmcloud:httpserver', 'wasmcloud:keyvalue']);
    });

    await steps.run('the events list shows the actor starting', async () => {
      await page.getByTestId('event').filter({ hasText: 'actors_started' }).first().waitFor();
    });

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok(existsSync(screenshot), `no screenshot at ${screenshot}`);
    assert.ok(statSync(screenshot).size > 0, 'the screenshot is empty');

    steps.current = 'page health';
    assert.deepEqual(pageProblems, [], 'the page logged no errors');
  } catch (err) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: failureScreenshot, fullPage: true }).catch(() => {});
    err.message =
      `step "${steps.current}" failed: ${err.message}\n` +
      (pageProblems.length ? `  page problems: ${pageProblems.join('; ')}\n` : '') +
      `  screenshot: ${failureScreenshot}\n  wash up output:\n${wash ? wash.output() : ''}`;
    throw err;
  }
});
