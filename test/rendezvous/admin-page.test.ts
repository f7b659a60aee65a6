import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page, type Request, type Response } from 'playwright-core';
import { runCli, stopChild } from '../helpers/cli.js';
import { startLoopbackPair, type LoopbackPair } from '../helpers/loopback-pair.js';
import { missingTool } from '../helpers/tools.js';

/**
 * The phone page in headless Chromium at phone size, served by a real rendezvous at /admin with a real
 * agent behind it: sign in with a rendezvous key, allow this device, see it listed, remove it.
 */

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const PHONE = { width: 390, height: 844 };
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const CSP_LISTENER = "document.addEventListener('securitypolicyviolation', (event) => reportCspViolation(event.violatedDirective + ' blocked ' + event.blockedURI));";
const STORED_ITEMS = '({ local: localStorage.length, session: sessionStorage.length })';
const NOTHING_STORED = { local: 0, session: 0 };
const WRONG_KEY = `0123456789ab:${'x'.repeat(43)}`;

const skip = missingTool('chromium');
let pair: LoopbackPair;
let browser: Browser;
let pageUrl: string;
let key: string;

/** Console errors, uncaught exceptions and CSP violations of a page, as text. */
interface Trouble {
  problems: string[];
}

interface Phone {
  context: BrowserContext;
  page: Page;
  /** The answer to GET /admin. */
  response: Response | null;
  trouble: Trouble;
}

/** A fresh phone-sized browser context (no storage) with the page open; closed after `use`. */
async function withPhone(use: (phone: Phone) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: PHONE });
  try {
    const trouble: Trouble = { problems: [] };
    await context.exposeFunction('reportCspViolation', (text: string) => trouble.problems.push(`CSP: ${text}`));
    // page-side code as text: this project compiles without the DOM types
    await context.addInitScript({ content: CSP_LISTENER });
    const page = await context.newPage();
    page.on('console', (message) => { if (message.type() === 'error') trouble.problems.push(`console: ${message.text()}`); });
    page.on('pageerror', (error) => trouble.problems.push(`exception: ${error.message}`));
    const response = await page.goto(pageUrl);
    await use({ context, page, response, trouble });
  } finally {
    await context.close();
  }
}

/** How many items the page's origin keeps in localStorage and in sessionStorage. */
function storedItems(page: Page): Promise<{ local: number; session: number }> {
  return page.evaluate(STORED_ITEMS);
}

/**
 * Reloads the page and asserts it asks for the key: the sign-in form shows, and no signed call is made
 * (waiting for the network to go quiet gives a kept key time to sign in by itself).
 */
async function assertReloadAsksForKey(page: Page): Promise<void> {
  const signedCalls: string[] = [];
  const onRequest = (request: Request): void => { if (request.headers().authorization) signedCalls.push(request.url()); };
  page.on('request', onRequest);
  try {
    await page.reload({ waitUntil: 'networkidle' });
  } finally {
    page.off('request', onRequest);
  }
  assert.deepEqual(signedCalls, [], 'no signed call after a reload');
  assert.equal(await page.getByLabel('Admin key').isVisible(), true, 'the reloaded page asks for the key');
  assert.equal(await page.getByLabel('Admin key').inputValue(), '');
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), false);
}

async function signIn(page: Page, keyText: string, remember = false): Promise<void> {
  await page.getByLabel('Admin key').fill(keyText);
  if (remember) await page.getByLabel('Remember on this device').check();
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('the phone page', { skip }, () => {
  before(async () => {
    pair = await startLoopbackPair({ prefix: 'hp-admin-page-', agent: { allow: '[{ cidr = "192.168.1.0/24", note = "LAN" }]' } });
    const keygen = await runCli(['keygen', '--config', pair.rendezvousConfig, '--note', 'phone']);
    assert.equal(keygen.code, 0, keygen.stderr);
    key = keygen.stdout.trim();
    pageUrl = `https://127.0.0.1:${pair.ports.http}/admin?agent=home`;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await pair?.stop();
  });

  test('sign in, allow this device, see it listed, remove it; no console errors, no CSP violations', () => withPhone(async ({ page, response, trouble }) => {
    assert.equal(response?.status(), 200);
    assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'sha256-/, 'served with a CSP that names the script by its hash');
    assert.equal(await page.getByLabel('Agent name').inputValue(), 'home', 'prefilled from ?agent=');

    await signIn(page, key);
    await page.getByText('192.168.1.0/24').waitFor();
    assert.equal(await page.locator('#online').textContent(), 'online');
    assert.match(await page.locator('#address').textContent() ?? '', /^127\.0\.0\.1:\d+$/);

    // the agent lists the rendezvous's own address (127.0.0.1 here) for its reachability checks, without
    // a Remove button; the device's entry is the runtime one
    const entries = page.getByRole('list', { name: 'Whitelist' });
    const removeButton = page.getByRole('button', { name: 'Remove 127.0.0.1/32' });
    const added = entries.getByRole('listitem').filter({ has: removeButton });
    await page.getByRole('button', { name: 'Allow this device for 24 h' }).click();
    await added.waitFor();
    assert.match(await page.getByRole('status').textContent() ?? '', /This device \(127\.0\.0\.1\/32\) may connect until/);
    assert.match(await added.textContent() ?? '', /^127\.0\.0\.1\/32allowed from the admin page · expires in (24 h|23 h 59 min)Remove$/);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'admin-page.png') });
    assert.deepEqual(page.viewportSize(), PHONE);

    await removeButton.click();
    await added.waitFor({ state: 'detached' });
    assert.match(await page.getByRole('status').textContent() ?? '', /^Removed 127\.0\.0\.1\/32\.$/);
    await entries.getByText('192.168.1.0/24').waitFor();
    assert.equal(await page.getByRole('button', { name: /^Remove 192\.168\.1\.0/ }).count(), 0, 'config entries have no Remove button');
    assert.deepEqual(await storedItems(page), NOTHING_STORED, 'the key is not kept without "remember"');
    await assertReloadAsksForKey(page);
    assert.deepEqual(trouble.problems, []);
  }));

  test('"remember on this device" keeps no refused key, signs a new tab in with an accepted one; sign out forgets it', () => withPhone(async ({ context, page }) => {
    await signIn(page, WRONG_KEY, true);
    await page.getByText(/The key was refused/).waitFor();
    assert.deepEqual(await storedItems(page), NOTHING_STORED, 'a refused key is not kept');
    await assertReloadAsksForKey(page);

    await signIn(page, key, true);
    await page.getByText('192.168.1.0/24').waitFor();
    assert.deepEqual(await storedItems(page), { local: 1, session: 0 }, 'an accepted key is kept across visits');
    const second = await context.newPage();
    await second.goto(pageUrl);
    await second.getByText('192.168.1.0/24').waitFor();
    assert.equal(await second.getByLabel('Remember on this device').isChecked(), true);
    await second.getByRole('button', { name: 'Sign out' }).click();
    assert.deepEqual(await storedItems(second), NOTHING_STORED);
    assert.equal(await second.getByLabel('Admin key').isVisible(), true);
  }));

  test('a wrong key and a slow clock get clear error text', () => withPhone(async ({ page }) => {
    await signIn(page, WRONG_KEY);
    await page.getByText(/The key was refused \(unknown key 0123456789ab/).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();

    await page.clock.setFixedTime(Date.now() - 432_000);
    await signIn(page, key);
    await page.getByText(/This device's clock is 7 min 1\d s behind the server/).waitFor();
  }));

  test('an agent that went offline: the status says so and the whitelist error names it', async () => {
    await stopChild(pair.agent.child);
    await withPhone(async ({ page }) => {
      await signIn(page, key);
      await page.getByText(/^The agent "home" is offline or not answering \(home is offline since /).waitFor();
      assert.equal(await page.locator('#online').textContent(), 'offline');
    });
  });
});
