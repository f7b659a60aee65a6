import { createHash } from 'node:crypto';

/**
 * The phone page the rendezvous serves at GET /admin: one self-contained HTML document (inline CSS and JS,
 * no framework, nothing fetched but the admin API on the same origin). It asks for the agent name and an
 * admin key once, signs each request with WebCrypto exactly as src/admin/signature.ts does, and offers
 * "Allow this device", the home's address and reachability, and the whitelist with a remove button.
 *
 * The key lives in page memory (a reload asks again) unless "Remember on this device" is ticked; then it
 * goes to localStorage, and only once the server has accepted it, so a mistyped key is never kept.
 *
 * The page needs no 'unsafe-inline': the style and the script are fixed texts, allowed by their hashes in
 * ADMIN_PAGE_CSP; the markup has no inline handlers or style attributes.
 */

/** The stylesheet: the exact text inside <style>. */
export const ADMIN_PAGE_STYLE = `
:root { color-scheme: light dark; --accent: #0b63ce; --bad: #b3261e; --good: #1b7f3b; --line: #8884; }
* { box-sizing: border-box; }
body { margin: 0; font: 17px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 34rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
input[type=text], input[type=password] { width: 100%; font: inherit; padding: .7rem; border: 1px solid var(--line); border-radius: .5rem; }
label.check { display: flex; gap: .5rem; align-items: center; font-weight: 400; }
label.check input { width: 1.4rem; height: 1.4rem; }
button { font: inherit; padding: .6rem 1rem; border-radius: .5rem; border: 1px solid var(--line); background: transparent; color: inherit; }
button.primary { width: 100%; min-height: 3.5rem; margin-top: 1rem; border: 0; background: var(--accent); color: #fff; font-weight: 600; }
button.big { min-height: 5rem; font-size: 1.25rem; }
button:disabled { opacity: .6; }
.bar { display: flex; justify-content: space-between; align-items: center; gap: .5rem; margin-top: 1rem; }
.bar h2 { margin: 0; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .25rem 1rem; margin: 0; }
dt { color: GrayText; }
dd { margin: 0; overflow-wrap: anywhere; }
ul { list-style: none; padding: 0; margin: 0; }
li { display: flex; justify-content: space-between; align-items: center; gap: .75rem; padding: .7rem 0; border-bottom: 1px solid var(--line); }
li small { display: block; color: GrayText; }
.cidr { font-weight: 600; overflow-wrap: anywhere; }
.yes { color: var(--good); }
.no { color: var(--bad); }
#message { margin: 1rem 0; }
#message:empty { display: none; }
#message.error { color: var(--bad); font-weight: 600; }
`;

/** The script: the exact text inside <script>. */
export const ADMIN_PAGE_SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
const STORAGE_NAME = 'homeport-admin';
const KEY_PATTERN = /^([0-9a-f]{12}):([A-Za-z0-9_-]{43})$/;
const AGENT_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const utf8 = new TextEncoder();
// { agent, keyId, hmac: CryptoKey, toRemember: the JSON to put in localStorage on the first 2xx, or null }
let session = null;

const hex = (buffer) => Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, '0')).join('');
const base64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');

function spanInWords(ms) {
  const units = [['d', 86400000], ['h', 3600000], ['min', 60000], ['s', 1000]];
  const rounded = Math.floor(ms / 1000) * 1000;
  const first = units.findIndex(([, size]) => rounded >= size);
  if (first < 0) return '0 s';
  const [unit, size] = units[first];
  const next = units[first + 1];
  const rest = next ? Math.floor((rounded % size) / next[1]) : 0;
  return Math.floor(rounded / size) + ' ' + unit + (rest > 0 ? ' ' + rest + ' ' + next[0] : '');
}

function show(text, isError) {
  $('message').textContent = text;
  $('message').className = isError ? 'error' : '';
}

/** Same string-to-sign as src/admin/signature.ts: label, method, path, query, ts, nonce, body SHA-256. */
async function authorization(method, path, body) {
  const ts = Math.floor(Date.now() / 1000);
  const nonce = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const bodyHash = hex(await crypto.subtle.digest('SHA-256', utf8.encode(body)));
  const text = ['HOMEPORT-HMAC-SHA256', method, path, '', ts, nonce, bodyHash].join('\\n');
  const sig = hex(await crypto.subtle.sign('HMAC', session.hmac, utf8.encode(text)));
  return 'HOMEPORT-HMAC key=' + session.keyId + ', ts=' + ts + ', nonce=' + nonce + ', sig=' + sig;
}

/** One signed API call; resolves to the JSON answer or throws an Error whose message is for the user. */
async function api(method, route, body) {
  const path = '/api/agents/' + encodeURIComponent(session.agent) + '/' + route;
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers = { authorization: await authorization(method, path, text) };
  if (text) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: text || undefined, cache: 'no-store', credentials: 'omit' });
  } catch {
    throw new Error('Cannot reach the rendezvous: check this device\\'s connection and try again.');
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(explain(response, answer));
  rememberAcceptedKey();
  return answer;
}

/** A 2xx means the server accepted the key: only now is it worth keeping, and only if asked. */
function rememberAcceptedKey() {
  if (!session?.toRemember) return;
  localStorage.setItem(STORAGE_NAME, session.toRemember);
  session.toRemember = null;
}

function explain(response, answer) {
  const reason = typeof answer.error === 'string' ? answer.error : 'status ' + response.status;
  switch (response.status) {
    case 401:
      if (answer.serverTime) {
        const offset = Date.parse(answer.serverTime) - Date.now();
        return 'This device\\'s clock is ' + spanInWords(Math.abs(offset)) + (offset > 0 ? ' behind' : ' ahead of') + ' the server: set the time automatically (network time) and try again.';
      }
      return 'The key was refused (' + reason + '). Sign out and enter the key again; it must be a rendezvous key from homeport keygen.';
    case 403: return 'This key may not do that (' + reason + '). Make a key with --scopes status:read,whitelist:write.';
    case 404: return 'No agent "' + session.agent + '" here (' + reason + '). Check the name.';
    case 429: return 'Too many failed attempts from this address: try again in ' + (response.headers.get('retry-after') || 'a few') + ' s.';
    case 502: case 503: case 504: return 'The agent "' + session.agent + '" is offline or not answering (' + reason + ').';
    default: return 'The server answered ' + response.status + ': ' + reason;
  }
}

function describeExpiry(entry) {
  if (!entry.expires) return entry.source === 'config' ? 'permanent (agent.toml)' : 'never expires';
  const left = Date.parse(entry.expires) - Date.now();
  return left > 0 ? 'expires in ' + spanInWords(left) : 'expiring now';
}

function renderEntries(entries) {
  const list = $('entries');
  list.replaceChildren();
  $('empty').hidden = entries.length > 0;
  for (const entry of entries) {
    const item = document.createElement('li');
    const text = document.createElement('div');
    const cidr = document.createElement('span');
    cidr.className = 'cidr';
    cidr.textContent = entry.cidr;
    const details = document.createElement('small');
    details.textContent = [entry.note, describeExpiry(entry)].filter(Boolean).join(' · ');
    text.append(cidr, details);
    item.append(text);
    if (entry.source === 'runtime') {
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', 'Remove ' + entry.cidr);
      remove.addEventListener('click', () => act(remove, async () => {
        await api('DELETE', 'whitelist/' + encodeURIComponent(entry.cidr));
        show('Removed ' + entry.cidr + '.');
      }));
      item.append(remove);
    }
    list.append(item);
  }
}

function renderStatus(status) {
  $('online').textContent = status.online ? 'online' : 'offline';
  $('online').className = status.online ? 'yes' : 'no';
  $('address').textContent = status.publicAddress || 'unknown';
  const reachable = status.reachable === undefined ? 'not checked yet' : status.reachable ? 'yes' : 'no' + (status.reason ? ': ' + status.reason : '');
  $('reachable').textContent = reachable;
  $('reachable').className = status.reachable ? 'yes' : status.reachable === false ? 'no' : '';
}

/** Shows what answered even when the other call failed: an offline agent still has a status. */
async function refresh() {
  const [status, list] = await Promise.allSettled([api('GET', 'status'), api('GET', 'whitelist')]);
  if (status.status === 'fulfilled') renderStatus(status.value);
  if (list.status === 'fulfilled') renderEntries(list.value.entries);
  const failed = [status, list].find((call) => call.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Runs a user action with its button disabled, then shows the fresh state; errors go to the message line. */
async function act(button, action) {
  button.disabled = true;
  try {
    await action();
    await refresh();
  } catch (error) {
    show(error.message, true);
  } finally {
    button.disabled = false;
  }
}

async function signIn(agent, keyText, remember) {
  const match = KEY_PATTERN.exec(keyText);
  if (!AGENT_PATTERN.test(agent)) throw new Error('The agent name is lower-case letters, digits and dashes, e.g. home.');
  if (!match) throw new Error('The key is "<id>:<secret>" as homeport keygen printed it: 12 hex digits, a colon, 43 characters.');
  const hmac = await crypto.subtle.importKey('raw', utf8.encode(match[2]), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  session = { agent, keyId: match[1], hmac, toRemember: remember ? JSON.stringify({ agent, key: keyText }) : null };
  $('login').hidden = true;
  $('panel').hidden = false;
  $('who').textContent = agent + ' · key ' + match[1];
}

async function start(agent, keyText, remember) {
  try {
    await signIn(agent, keyText, remember);
    show('Loading…');
    await refresh();
    show('');
  } catch (error) {
    show(error.message, true);
  }
}

function signOut() {
  localStorage.removeItem(STORAGE_NAME);
  session = null;
  $('key').value = '';
  $('panel').hidden = true;
  $('login').hidden = false;
  show('Signed out: the key is no longer kept on this device.');
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  // A new key replaces any kept one; it is kept itself only when ticked and accepted.
  localStorage.removeItem(STORAGE_NAME);
  start($('agent').value.trim(), $('key').value.trim(), $('remember').checked);
});

$('allow').addEventListener('click', () => act($('allow'), async () => {
  const { entry } = await api('POST', 'allow-me', { ttl: '24h', note: 'allowed from the admin page' });
  const until = new Date(entry.expires).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  show('This device (' + entry.cidr + ') may connect until ' + until + '.');
}));
$('refresh').addEventListener('click', () => act($('refresh'), async () => show('')));
$('signout').addEventListener('click', signOut);

const saved = JSON.parse(localStorage.getItem(STORAGE_NAME) || 'null');
const fromUrl = new URLSearchParams(location.search).get('agent');
$('agent').value = fromUrl || (saved && saved.agent) || '';
if (saved && (!fromUrl || fromUrl === saved.agent)) {
  $('remember').checked = true;
  start(saved.agent, saved.key, false); // already kept
}
`;

export const ADMIN_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>homeport admin</title>
<link rel="icon" href="data:,">
<style>${ADMIN_PAGE_STYLE}</style>
</head>
<body>
<main>
<h1>homeport</h1>
<form id="login" autocomplete="on">
  <label for="agent">Agent name</label>
  <input id="agent" name="agent" type="text" autocomplete="username" autocapitalize="none" autocorrect="off" spellcheck="false" required>
  <label for="key">Admin key</label>
  <input id="key" name="key" type="password" autocomplete="current-password" placeholder="id:secret" required>
  <label class="check"><input id="remember" type="checkbox"> Remember on this device</label>
  <button class="primary" type="submit">Sign in</button>
</form>
<p id="message" role="status" aria-live="polite"></p>
<section id="panel" hidden>
  <div class="bar"><span id="who"></span><button id="signout" type="button">Sign out</button></div>
  <button id="allow" class="primary big" type="button">Allow this device for 24 h</button>
  <h2>Home</h2>
  <dl>
    <dt>Agent</dt><dd id="online">…</dd>
    <dt>Address</dt><dd id="address">…</dd>
    <dt>Reachable</dt><dd id="reachable">…</dd>
  </dl>
  <div class="bar"><h2 id="whitelist-title">Whitelist</h2><button id="refresh" type="button">Refresh</button></div>
  <ul id="entries" aria-labelledby="whitelist-title"></ul>
  <p id="empty" hidden>No entries: every device is refused.</p>
</section>
</main>
<script>${ADMIN_PAGE_SCRIPT}</script>
</body>
</html>
`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/**
 * The Content-Security-Policy to serve with ADMIN_PAGE_HTML: only this page's own style and script, fetches
 * to the same origin (the admin API), no frames, no form posts, no plugins.
 */
export const ADMIN_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(ADMIN_PAGE_SCRIPT)}`,
  `style-src ${hash(ADMIN_PAGE_STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
