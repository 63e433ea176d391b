// Browser test of the petclinic web app (issue 7): `wash up` runs a copy of the root
// app.yaml (free port, data in a temp dir), Debian's headless chromium (driven by
// playwright-core, which downloads nothing) opens the page, finds owners by last name,
// adds an owner, a pet and a visit, and checks each is shown. A screenshot goes to
// tests/artifacts/petclinic.png (petclinic-failure.png when a step fails).
//
// Needs: target/debug/wash (`cargo build -p wash-cli`), the actors
// (`bash scripts/build-actors.sh`), /usr/bin/chromium and `npm ci` here. Run it with
// `bash tests/browser/run.sh` (or `node --test tests/browser/petclinic.spec.mjs`).
// Environment: WASH_BIN (default target/debug/wash), CHROMIUM (default /usr/bin/chromium).
// `wash up`, chromium and the teardown come from harness.mjs, shared with the other spec.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

const screenshot = path.join(artifacts, 'petclinic.png');
const failureScreenshot = path.join(artifacts, 'petclinic-failure.png');

const STEP_TIMEOUT_MS = 10_000;

let tmp; // temp dir: manifest copy, key-value data, keys, browser profile
let wash; // wash up's handle from startWash
let context; // playwright persistent context (its own fresh --user-data-dir)

// ---- the app under test ---------------------------------------------------------------

/** Rewrites `pattern` in `text`; fails loudly when app.yaml no longer has it. */
function rewrite(text, pattern, replacement, what) {
  const out = text.replace(pattern, replacement);
  assert.notEqual(out, text, `app.yaml: found no ${what} to rewrite (pattern ${pattern})`);
  return out;
}

/** A copy of the root app.yaml for the temp dir: absolute module paths, the given port,
 *  and the key-value data under the temp dir (relative to wash's cwd, which is `tmp`). */
function testManifest(port) {
  // Full-line comments dropped: they name the port and data path too.
  let yaml = readFileSync(path.join(root, 'app.yaml'), 'utf8').replace(/^\s*#.*\n/gm, '');
  yaml = rewrite(
    yaml,
    /^(\s*path:\s*)(actors\/\S+\.wasm)\s*$/gm,
    (_, key, rel) => `${key}${JSON.stringify(path.join(root, rel))}`,
    'actor module path',
  );
  yaml = rewrite(yaml, /port:\s*"8080"/g, `port: "${port}"`, 'HTTP port 8080');
  yaml = rewrite(yaml, /path:\s*\.data\/petclinic\b/g, 'path: data/petclinic', 'key-value path .data/petclinic');
  assert.doesNotMatch(yaml, /port:\s*"?8080|path:\s*\.data\//, 'the app.yaml copy still uses port 8080 or .data/');
  return yaml;
}

// ---- setup and teardown ---------------------------------------------------------------

before(async () => {
  requireFiles(
    ['gateway', 'owners', 'vets', 'visits', 'ui'].map((a) => [
      path.join(root, `actors/target/wasm/petclinic-${a}.wasm`),
      'run `bash scripts/build-actors.sh`',
    ]),
  );

  // No stale pictures from an earlier run.
  rmSync(screenshot, { force: true });
  rmSync(failureScreenshot, { force: true });

  tmp = mkdtempSync(path.join(os.tmpdir(), 'nimbus-petclinic-browser-'));
  const port = await freePort();
  const manifest = path.join(tmp, 'app.yaml');
  writeFileSync(manifest, testManifest(port));
  const started = startWash(['up', manifest], tmp);
  wash = started.handle;
  await started.ready;

  context = await launchChromium(path.join(tmp, 'profile'), {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1100, height: 900 },
    stepTimeoutMs: STEP_TIMEOUT_MS,
  });
});

after(() => tearDown({ context, wash, tmp }));

// ---- the test -------------------------------------------------------------------------

test('petclinic: find owners, add an owner, a pet and a visit', async (t) => {
  const page = context.pages()[0] || (await context.newPage());

  // Anything going wrong in the page itself fails the test.
  const pageProblems = watchPage(page, { failedRequests: true });

  const app = page.getByTestId('app');
  // Form inputs share their data-testid with the cells that show the saved value
  // (owner-address, pet-name, visit-date, ...), so they are found inside their form.
  const ownerForm = page.getByTestId('owner-form');
  const petForm = page.getByTestId('pet-form');
  const visitForm = page.getByTestId('visit-form');
  /** Waits until `view` is the rendered view (and not loading). */
  const viewReady = (view) =>
    page.locator(`main#app[data-view="${view}"][data-loading="false"]`).waitFor({ state: 'visible' });
  const ownerNames = () => page.getByTestId('owners-rows').getByTestId('owner-name').allTextContents();

  const steps = stepper(t);

  // A unique owner for this run (letters only: a last name, at most 30 characters).
  const suffix = Array.from(Date.now().toString(36) + Math.random().toString(36).slice(2, 6))
    .map((c) => (/[0-9]/.test(c) ? String.fromCharCode(97 + Number(c)) : c))
    .join('');
  const owner = {
    firstName: 'Ada',
    lastName: `Browser${suffix[0].toUpperCase()}${suffix.slice(1)}`.slice(0, 30),
    address: '12 Analytical Engine Rd.',
    city: 'Headlessville',
    telephone: '6085550123',
  };
  const pet = { name: 'Pixel', birthDate: '2021-04-03', type: 'hamster' };
  const visit = { date: '2024-02-29', description: 'Annual check-up; teeth trimmed.' };

  try {
    await steps.run('open the app: every seed owner listed', async () => {
      await page.goto('/');
      await viewReady('owners-view');
      await page.getByTestId('owner-row').first().waitFor();
      const all = await ownerNames();
      assert.ok(all.length >= 10, `expected the 10 seed owners, got ${JSON.stringify(all)}`);
      assert.equal(await page.title(), 'Petclinic');
    });

    await steps.run('find owners by last name "Davis"', async () => {
      await page.getByTestId('search-last-name').fill('Davis');
      await page.getByTestId('search-button').click();
      await page.waitForURL(/#\/owners\?lastName=Davis$/);
      // Auto-wait until the list holds only the search result.
      await page.waitForFunction(() => {
        const rows = document.querySelectorAll('#owners-rows [data-testid=owner-row]');
        return (
          document.getElementById('app').dataset.loading === 'false' &&
          rows.length > 0 &&
          [...rows].every((r) => r.querySelector('[data-testid=owner-name]').textContent.endsWith(' Davis'))
        );
      });
      assert.deepEqual((await ownerNames()).sort(), ['Betty Davis', 'Harold Davis']);
      assert.equal(await page.getByTestId('owners-empty').isHidden(), true);
    });

    await steps.run(`add owner ${owner.firstName} ${owner.lastName}`, async () => {
      await page.getByTestId('add-owner-button').click();
      await viewReady('owner-form-view');
      assert.equal(await page.getByTestId('owner-form-title').textContent(), 'Add owner');
      await ownerForm.getByTestId('owner-first-name').fill(owner.firstName);
      await ownerForm.getByTestId('owner-last-name').fill(owner.lastName);
      await ownerForm.getByTestId('owner-address').fill(owner.address);
      await ownerForm.getByTestId('owner-city').fill(owner.city);
      await ownerForm.getByTestId('owner-telephone').fill(owner.telephone);
      await page.getByTestId('owner-submit').click();
      await page.waitForURL(/#\/owners\/\d+$/);
      await viewReady('owner-view');
      await page.getByTestId('owner-full-name').filter({ hasText: owner.lastName }).waitFor();
      assert.equal(await page.getByTestId('owner-full-name').textContent(), `${owner.firstName} ${owner.lastName}`);
      assert.equal(await page.getByTestId('owner-details-address').textContent(), owner.address);
      assert.equal(await page.getByTestId('owner-details-city').textContent(), owner.city);
      assert.equal(await page.getByTestId('owner-details-telephone').textContent(), owner.telephone);
      assert.match(await page.getByTestId('owner-id').textContent(), /^#\d+$/);
      assert.equal(await page.getByTestId('pets-empty').isVisible(), true, 'a new owner shows "No pets yet."');
    });
    const ownerUrl = page.url();

    await steps.run(`add pet ${pet.name} (${pet.type})`, async () => {
      await page.getByTestId('add-pet-button').click();
      await viewReady('pet-form-view');
      assert.equal(
        await page.getByTestId('pet-form-owner').textContent(),
        `${owner.firstName} ${owner.lastName}`,
      );
      await petForm.getByTestId('pet-name').fill(pet.name);
      await petForm.getByTestId('pet-birth-date').fill(pet.birthDate);
      await petForm.getByTestId('pet-type').selectOption({ label: pet.type });
      await page.getByTestId('pet-submit').click();
      await page.waitForURL(ownerUrl);
      const card = page.locator(`[data-testid=pet][data-pet-name="${pet.name}"]`);
      await card.waitFor();
      await viewReady('owner-view');
      assert.equal(await card.getByTestId('pet-name').textContent(), pet.name);
      assert.equal(await card.getByTestId('pet-birth-date').textContent(), pet.birthDate);
      assert.equal(await card.getByTestId('pet-type').textContent(), pet.type);
      assert.equal(await card.getByTestId('visits-empty').isVisible(), true, 'a new pet shows "No visits yet."');
      assert.equal(await page.getByTestId('pets-empty').isHidden(), true);
      assert.equal(await page.getByTestId('pet').count(), 1);
    });

    await steps.run(`add a visit to ${pet.name}`, async () => {
      const card = page.locator(`[data-testid=pet][data-pet-name="${pet.name}"]`);
      await card.getByTestId('add-visit-button').click();
      await viewReady('visit-form-view');
      assert.match(await page.getByTestId('visit-form-pet').textContent(), new RegExp(`^${pet.name} \\(${pet.type}`));
      await visitForm.getByTestId('visit-date').fill(visit.date);
      await visitForm.getByTestId('visit-description').fill(visit.description);
      await page.getByTestId('visit-submit').click();
      await page.waitForURL(ownerUrl);
      const row = card.getByTestId('visit-row');
      await row.first().waitFor();
      await viewReady('owner-view');
      assert.equal(await row.count(), 1);
      assert.equal(await row.getByTestId('visit-date').textContent(), visit.date);
      assert.equal(await row.getByTestId('visit-description').textContent(), visit.description);
      assert.equal(await card.getByTestId('visits-table').isVisible(), true);
      assert.equal(await card.getByTestId('visits-empty').isHidden(), true);
    });

    // The details page with owner, pet and visit is the test's picture.
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });

    await steps.run(`find the new owner by last name: listed with ${pet.name}`, async () => {
      await page.getByTestId('nav-owners').click();
      await viewReady('owners-view');
      await page.getByTestId('search-last-name').fill(owner.lastName);
      await page.getByTestId('search-button').click();
      await page.waitForURL(new RegExp(`#/owners\\?lastName=${owner.lastName}$`));
      const row = page.getByTestId('owner-row').filter({ hasText: owner.lastName });
      await row.waitFor();
      await viewReady('owners-view');
      assert.deepEqual(await ownerNames(), [`${owner.firstName} ${owner.lastName}`]);
      assert.equal(await row.getByTestId('owner-address').textContent(), owner.address);
      assert.equal(await row.getByTestId('owner-city').textContent(), owner.city);
      assert.equal(await row.getByTestId('owner-telephone').textContent(), owner.telephone);
      assert.equal(await row.getByTestId('owner-pets').textContent(), pet.name);
      // Reloading shows the same: the data is stored, not just kept in the page.
      await page.reload();
      await viewReady('owners-view');
      await page.getByTestId('owner-row').first().waitFor();
      assert.deepEqual(await ownerNames(), [`${owner.firstName} ${owner.lastName}`]);
    });

    steps.current = 'page health';
    assert.equal(await page.getByTestId('status').textContent(), '', 'no page-level error message');
    assert.deepEqual(pageProblems, [], 'the page logged no errors and no request failed');
  } catch (err) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: failureScreenshot, fullPage: true }).catch(() => {});
    const state = await app
      .evaluate((m) => `view=${m.dataset.view} loading=${m.dataset.loading} status="${m.querySelector('#status').textContent}"`)
      .catch(() => 'unavailable');
    err.message =
      `step "${steps.current}" failed: ${err.message}\n` +
      `  page: ${page.url()} (${state})\n` +
      (pageProblems.length ? `  page problems: ${pageProblems.join('; ')}\n` : '') +
      `  screenshot: ${failureScreenshot}`;
    throw err;
  }
});
