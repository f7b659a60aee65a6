/** What every run serves and presents: the static files (cached across runs) and a fresh TLS certificate. */
import { randomFill } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { runCommand } from './processes.js';

export const BIG_FILE = { name: 'big-1GiB.bin', bytes: 1024 ** 3 };
export const SMALL_FILE = { name: 'small-1KiB.bin', bytes: 1024 };

const fillRandom = promisify(randomFill);

async function hasSize(path: string, bytes: number): Promise<boolean> {
  return stat(path).then((info) => info.size === bytes, () => false);
}

/**
 * Random content, so no layer can win by compressing. Written under a temporary name and renamed, so
 * an interrupted run never leaves a short file that the next run would take for the real one.
 */
async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const partial = `${path}.partial`;
  const out = createWriteStream(partial);
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  for (let written = 0; written < bytes; written += chunk.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, bytes - written));
    await fillRandom(piece);
    if (!out.write(piece)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  await rename(partial, path);
}

/** The served files in `dir`, created once and reused while their size is right. */
export async function ensureStaticFiles(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const file of [SMALL_FILE, BIG_FILE]) {
    const path = join(dir, file.name);
    if (await hasSize(path, file.bytes)) continue;
    if (file.bytes > 1024 ** 2) console.log(`creating ${path} (${file.bytes / 1024 ** 3} GiB of random bytes, once)`);
    await writeRandomFile(path, file.bytes);
  }
}

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

/** A self-signed EC P-256 certificate for 127.0.0.1 and localhost; every proxy presents the same one. */
export async function createCertificate(dir: string): Promise<CertificateFiles> {
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
  const { code, stderr } = await runCommand('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-sha256', '-nodes',
    '-days', '2', '-subj', '/CN=homeport-bench', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', files.keyFile, '-out', files.certFile,
  ], 10_000);
  if (code !== 0) throw new Error(`openssl req failed: ${stderr.trim()}`);
  return files;
}
