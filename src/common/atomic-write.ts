import { open, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** A file's owner: user and group ids. */
export interface FileOwner {
  uid: number;
  gid: number;
}

/**
 * The one way homeport writes state: a temp file in the same directory, fsync, rename over the target,
 * fsync the directory. A reader (or a crash) sees the old file or the new one, never half of either.
 * `owner` (root only) is set before the rename, so no reader ever sees the file with the wrong owner.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, owner?: FileOwner): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temp, 'w', mode);
  try {
    await file.writeFile(data);
    if (owner) await file.chown(owner.uid, owner.gid);
    await file.chmod(mode); // open() applies the umask; state files must end up exactly `mode`
    await file.sync();
  } catch (error) {
    await file.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await file.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dirname(path));
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename itself durable; some filesystems refuse to fsync a directory, which is harmless.
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close();
}
