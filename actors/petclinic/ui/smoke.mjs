// A manual smoke test of the web app against a running petclinic (no browser needed):
// the flow the headless-Chromium test will cover (search by last name, add an owner, a pet
// and a visit, see them listed), plus API error display, edits and the vets page, run in
// jsdom against the real API. Not part of CI (it needs jsdom from npm).
//
//   cd actors && cargo run -p petclinic-gateway --example serve -- 127.0.0.1:18080 &
//   mkdir -p /tmp/jsdom && (cd /tmp/jsdom && npm install jsdom@26)
//   JSDOM_DIR=/tmp/jsdom node petclinic/ui/smoke.mjs http://127.0.0.1:18080/
//
// Run it against a fresh app: it expects exactly the seed data.
import { createRequire } from 'node:module';

const { JSDOM } = createRequire(`${process.env.JSDOM_DIR || process.cwd()}/`)('jsdom');
const base = process.argv[2] || 'http://127.0.0.1:18080/';
const html = await (await fetch(base)).text();
const js = await (await fetch(new URL('/app.js', base))).text();
const dom = new JSDOM(html, { url: base, runScripts: 'outside-only', pretendToBeVisual: true });
const w = dom.window, d = w.document;
const errors = [];
w.addEventListener('error', (e) => errors.push(String(e.error || e.message)));
w.fetch = (url, init) => fetch(new URL(url, base), init);
w.eval(js);
const $ = (id) => d.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, pred, ms = 3000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (pred()) return; await sleep(20); }
  throw new Error(`timeout waiting for ${what}; view=${$('app').dataset.view} loading=${$('app').dataset.loading} status=${$('status').textContent}`);
}
const ready = (view) => waitFor(view, () => $('app').dataset.view === view && $('app').dataset.loading === 'false');
function fill(id, value) { const e = $(id); e.value = value; e.dispatchEvent(new w.Event('input', { bubbles: true })); }
const q = (sel, root = d) => [...root.querySelectorAll(sel)];
const check = (cond, msg) => { if (!cond) throw new Error('FAILED: ' + msg); console.log('ok -', msg); };

await ready('owners-view');
check(q('[data-testid=owner-row]').length === 10, 'all seed owners listed initially');
fill('search-last-name', 'Davis');
$('search-button').click();
await waitFor('search', () => w.location.hash === '#/owners?lastName=Davis' && $('app').dataset.loading === 'false' && q('[data-testid=owner-row]').length === 2);
check(q('[data-testid=owner-name]').map((e) => e.textContent).join('|') === 'Betty Davis|Harold Davis', 'search by last name finds the Davises');

fill('search-last-name', 'Nobody');
$('search-button').click();
await waitFor('empty search', () => !$('owners-empty').hidden);
check($('owners-table').hidden, 'no-result search shows owners-empty');

$('add-owner-button').click();
await ready('owner-form-view');
fill('owner-first-name', 'Grace'); fill('owner-last-name', ' '); fill('owner-address', '1 Navy Way');
fill('owner-city', 'Arlington'); fill('owner-telephone', '12-34');
$('owner-submit').click();
await waitFor('form error', () => !$('owner-form-error').hidden);
check(['owner-last-name', 'owner-telephone'].every((id) => $(id).getAttribute('aria-invalid') === 'true'), 'API field errors mark the last name and telephone inputs: ' + $('owner-form-error').textContent);
check($('owner-form-error').textContent.split('\n').length === 2 && d.activeElement === $('owner-last-name'), 'both errors listed, the first field focused');
check($('owner-first-name').getAttribute('aria-invalid') === null, 'a good field is not marked');
fill('owner-last-name', 'Hopper'); fill('owner-telephone', '5551234');
$('owner-submit').click();
await ready('owner-view');
check($('owner-full-name').textContent === 'Grace Hopper', 'new owner shown after save');
check(!$('pets-empty').hidden, 'new owner has no pets');
const ownerHash = w.location.hash;

$('add-pet-button').click();
await ready('pet-form-view');
check(q('#pet-type option').length === 7, 'pet types loaded into the select');
fill('pet-name', 'Bug'); fill('pet-birth-date', '2020-02-30');
$('pet-type').value = q('#pet-type option').find((o) => o.textContent === 'cat').value;
$('pet-submit').click();
await waitFor('pet error', () => !$('pet-form-error').hidden);
check($('pet-birth-date').getAttribute('aria-invalid') === 'true', 'bad birth date flagged');
fill('pet-birth-date', '2020-02-29');
$('pet-submit').click();
await ready('owner-view');
const pet = q('[data-testid=pet]')[0];
check(pet && pet.dataset.petName === 'Bug' && pet.querySelector('[data-testid=pet-type]').textContent === 'cat', 'pet listed with type');
check(!pet.querySelector('[data-testid=visits-empty]').hidden, 'pet without visits');

pet.querySelector('[data-testid=add-visit-button]').click();
await ready('visit-form-view');
check($('visit-form-pet').textContent.startsWith('Bug'), 'visit form names the pet');
fill('visit-date', '2024-01-15'); fill('visit-description', 'found a moth');
$('visit-submit').click();
await ready('owner-view');
const rows = q('[data-testid=visit-row]');
check(rows.length === 1 && rows[0].querySelector('[data-testid=visit-description]').textContent === 'found a moth', 'visit listed under the pet');

$('edit-owner-button').click();
await ready('owner-form-view');
check($('owner-first-name').value === 'Grace', 'edit form prefilled');
fill('owner-city', 'New York');
$('owner-submit').click();
await ready('owner-view');
check($('owner-details-city').textContent === 'New York', 'owner updated');

q('[data-testid=edit-pet-button]')[0].click();
await ready('pet-form-view');
check($('pet-name').value === 'Bug' && q('#pet-type option').find((o)=>o.selected).textContent === 'cat', 'pet edit form prefilled');
fill('pet-name', 'Moth');
$('pet-submit').click();
await ready('owner-view');
check(q('[data-testid=pet-name]')[0].textContent === 'Moth', 'pet renamed');

fill('search-last-name', 'hop');
w.location.hash = '#/owners?lastName=hop';
await waitFor('search hopper', () => $('app').dataset.view === 'owners-view' && $('app').dataset.loading === 'false' && q('[data-testid=owner-row]').length === 1);
check(q('[data-testid=owner-pets]')[0].textContent === 'Moth', 'new owner found by prefix with pet');

w.location.hash = '#/owners/9999';
await waitFor('404', () => $('app').dataset.loading === 'false' && $('status').textContent !== '');
check($('status').textContent === 'owner 9999 not found', 'unknown owner message: ' + $('status').textContent);

$('nav-vets').click();
w.location.hash = '#/vets';
await ready('vets-view');
check(q('[data-testid=vet-row]').length === 6, 'vets listed');
check(q('[data-testid=vet-specialties]').map(e=>e.textContent).includes('dentistry, surgery'), 'vet specialties shown');
check(errors.length === 0, 'no script errors ' + errors.join(';'));
console.log('ALL OK', ownerHash);
w.close();
