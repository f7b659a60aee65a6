import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatStatus, type AgentStatus } from '../../src/agent/status.js';
import { acmePaths } from '../../src/tls/acme/store.js';
import { ensureSelfSigned } from '../../src/tls/selfsigned.js';
import { runCli } from '../helpers/cli.js';

let dir: string;
const AGENT = `[agent]\nname = "home"\n[whitelist]\nallow = ["127.0.0.1/32"]\n[[route]]\nhost = "*"\npath = "/"\ntarget = "http://127.0.0.1:8096"\n`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hp-cert-cli-'));
  await ensureSelfSigned(join(dir, 'certs'), ['nas.example.com', '127.0.0.1'], new Date());
});
after(() => rm(dir, { recursive: true, force: true }));

async function config(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

test('cert status of a self-signed agent: issuer, names, expiry, next renewal 30 days before', async () => {
  const file = await config('agent.toml', `${AGENT}[tls]\ncertDir = "certs"\nhostnames = ["nas.example.com", "127.0.0.1"]\n`);
  const run = await runCli(['cert', 'status', '--config', file]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^mode {10}selfsigned$/m);
  assert.match(run.stdout, /^issuer {8}homeport local CA [0-9a-f]{8}$/m);
  assert.match(run.stdout, /^names {9}nas\.example\.com, 127\.0\.0\.1$/m);
  assert.match(run.stdout, /^expires {7}\d{4}-\d\d-\d\dT.*Z \(in 396 d 22 h\)$/m);
  assert.match(run.stdout, /^next renewal  \d{4}-.*Z \(in 366 d 22 h\)$/m);
  const json = JSON.parse((await runCli(['cert', 'status', '--config', file, '--json'])).stdout) as Record<string, unknown>;
  assert.equal(json.mode, 'selfsigned');
  assert.equal(json.expired, false);
});

test('cert status of an acme rendezvous: the stored certificate, renewed at two thirds of its life; none yet is exit 1', async () => {
  const file = await config('rendezvous.toml', `[rendezvous]\nacmeHttp = "0.0.0.0:80"\n[tls]\nmode = "acme"\ncertDir = "acme-certs"\n[tls.acme]\nhostnames = ["rv.example.com"]\nchallenge = "http-01"\n[[agent]]\nname = "home"\nsecret = "0123456789abcdef0123"\n`);
  const none = await runCli(['cert', 'status', '-c', file]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^homeport cert: .*acme-cert\.pem does not exist: the CA has not issued a certificate yet \(start the program and check its log\)\n$/);
  await ensureSelfSigned(join(dir, 'acme-certs'), ['rv.example.com'], new Date());
  await copyFile(join(dir, 'acme-certs', 'cert.pem'), acmePaths(join(dir, 'acme-certs')).cert);
  const run = await runCli(['cert', 'status', '-c', file]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^mode {10}acme \(https:\/\/acme-v02\.api\.letsencrypt\.org\/directory, http-01\)$/m);
  assert.match(run.stdout, /^next renewal  .* \(in 264 d 14 h\)$/m, 'a third of 397 days before the end');
});

test('cert status: usage and config errors are exit 2', async () => {
  assert.equal((await runCli(['cert', 'status'])).code, 2);
  const bad = await runCli(['cert', 'renew', '--config', 'x.toml']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown action "renew"; the only one is status/);
});

test('homeport status shows the certificate line, and why a renewal fails', () => {
  const status: AgentStatus = {
    agent: 'home', localPort: 25305, connected: false, addressChanges: 0, updatedAt: '2026-01-01T00:00:00Z', pid: 1,
    certificate: { issuer: 'R11', names: ['home.example.com'], notAfter: '2026-03-01T00:00:00.000Z', renewAt: '2026-01-30T00:00:00.000Z', lastError: 'rate limited by the CA: too many certificates' },
  };
  const text = formatStatus(status, new Date('2026-01-02T00:00:00Z'));
  assert.match(text, /^certificate +R11, expires 2026-03-01T00:00:00\.000Z, renewal from 2026-01-30T00:00:00\.000Z\n +last renewal failed: rate limited by the CA: too many certificates$/m);
});
