// What the browser specs share: where the binaries are, a free port, `wash up` as a child
// process that is always stopped, headless Debian chromium with the network kept shut,
// and the checks and teardown around them. Each spec file runs in its own node process
// (`node --test` spawns one per file), so the module state here is per spec.
//
// Environment: WASH_BIN (default target/debug/wash), CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

/** The repository root, so specs find app.yaml, the actors and tests/artifacts from any cwd. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The wash binary under test; WASH_BIN overrides it to test another build. */
export const washBin = process.env.WASH_BIN || path.join(root, 'target/debug/wash');
/** Debian's chromium: playwright-core downloads no browser of its own. */
export const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';
/** Where the screenshots go (tests/artifacts/*.png), kept after the run for people to look at. */
export const artifacts = path.join(root, 'tests/artifacts');

/** The line `wash up` prints once the whole manifest is running. */
const READY_LINE = 'ready; press Ctrl-C to stop';
const READY_TIMEOUT_MS = 45_000;
/** How long `wash up` gets to exit on SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 10_000;

/** The network here is closed: nothing in the browser may reach out on its own. */
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

/**
 * Fails the test's setup with one message naming every missing file and how to make it,
 * so a fresh checkout says what to build instead of failing halfway through. `wash` and
 * chromium are always checked; `extra` adds `[file, fix]` pairs (the spec's actors).
 */
export function requireFiles(extra) {
  const missing = [
    [washBin, 'run `cargo build -p wash-cli`'],
    [chromiumBin, 'run scripts/setup.sh (installs Debian chromium)'],
    ...extra,
  ].filter(([file]) => !existsSync(file));
  assert.deepEqual(
    missing.map(([file, fix]) => `${file} is missing: ${fix}`),
    [],
    'the browser test cannot run',
  );
}

/** A TCP port on 127.0.0.1 that was free a moment ago, so parallel runs do not collide. */
export function freePort() {
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

/** Every `wash up` started here and not yet exited, for the exit guard. */
const running = new Set();
let guarded = false;

/**
 * Never leave `wash up` behind, whatever ends this process: a normal exit, a crash, or
 * Ctrl-C / SIGTERM from the runner (which would otherwise skip the `exit` handlers).
 */
function guardExit() {
  if (guarded) {
    return;
  }
  guarded = true;
  const killAll = () => {
    for (const handle of running) {
      handle.child.kill('SIGKILL');
    }
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/**
 * Starts `wash ARGS...` in `dir` (its cwd; keys in `dir`/keys, so the run leaves nothing
 * in the user's home) and returns `{ handle, ready }` at once, so the caller can keep the
 * handle for teardown even when it never gets ready. `ready` resolves with everything
 * wash printed on stdout up to the ready line, and rejects with the output when wash
 * exits or is not ready within 45 s. `handle.output()` is the last 20 kB of stdout and
 * stderr, for failure messages.
 */
export function startWash(args, dir) {
  guardExit();
  const child = spawn(washBin, args, {
    cwd: dir,
    env: { ...process.env, WASH_KEYS: path.join(dir, 'keys'), NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk) => {
    log = (log + chunk).slice(-20_000);
  };
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const handle = { child, output: () => log, exited, running: true };
  running.add(handle);
  exited.then(() => {
    handle.running = false;
    running.delete(handle);
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

/** SIGTERM (wash up exits cleanly on it, stopping its actors and providers), SIGKILL if it hangs. */
export async function stopWash(handle) {
  if (!handle || !handle.running) {
    return;
  }
  handle.child.kill('SIGTERM');
  const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS).unref());
  if ((await Promise.race([handle.exited, timeout])) === 'timeout') {
    console.error(`wash up did not stop on SIGTERM within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
    handle.child.kill('SIGKILL');
    await handle.exited;
  }
}

/**
 * Headless chromium with its own fresh profile in `profileDir` (nothing from the user's
 * browser, nothing kept), the closed-network flags, and `stepTimeoutMs` as the default
 * timeout of every page action. `options` go to playwright's context (viewport, baseURL).
 */
export async function launchChromium(profileDir, { stepTimeoutMs, ...options }) {
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumBin,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
    ...options,
  });
  context.setDefaultTimeout(stepTimeoutMs);
  return context;
}

/**
 * The teardown of a spec: closes the browser, then stops `wash up` and removes the temp
 * dir even when closing the browser failed, so one failure leaves no process or files.
 * Any argument may be undefined (setup stopped early).
 */
export async function tearDown({ context, wash, tmp }) {
  try {
    if (context) {
      await context.close();
    }
  } finally {
    await stopWash(wash);
    if (tmp) {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}

/**
 * Collects what goes wrong in the page itself (uncaught errors, console errors and, with
 * `failedRequests`, requests that failed), so a test can fail on them and name them.
 */
export function watchPage(page, { failedRequests = false } = {}) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      problems.push(`console error: ${msg.text()}`);
    }
  });
  if (failedRequests) {
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.method()} ${req.url()}`));
  }
  return problems;
}

/**
 * Named steps of one test: `steps.run(name, fn)` logs the name as a test diagnostic and
 * runs `fn`; `steps.current` is the step that was running, for the failure message.
 */
export function stepper(t) {
  const steps = {
    current: '',
    async run(name, fn) {
      steps.current = name;
      t.diagnostic(`step: ${name}`);
      await fn();
    },
  };
  return steps;
}
