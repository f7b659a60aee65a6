// A LAN media server for lab tests, run inside a namespace as an IPC child. Without an IPC channel (as when
// `node --test dist/test/` loads every file) it does nothing.
import type { AddressInfo } from 'node:net';
import { createMediaServer } from '../../src/demo/media-server.js';

if (process.send) {
  const [file, host = '127.0.0.1'] = process.argv.slice(2);
  const server = createMediaServer(file!);
  server.listen(0, host, () => process.send!({ listening: (server.address() as AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
}
