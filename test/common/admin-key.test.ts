import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAdminKey } from '../../src/common/admin-key.js';

const SECRET = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx';
const KEY = { id: '0123456789ab', secret: SECRET };

test('admin keys are "<id>:<secret>" as keygen prints them', () => {
  const parsed = parseAdminKey(` ${KEY.id}:${SECRET}\n`);
  assert.deepEqual(parsed, { ok: true, value: KEY });
  for (const bad of ['', KEY.id, `${KEY.id}:`, `${KEY.id}:${SECRET}:x`, `${KEY.id.toUpperCase()}:${SECRET}`, `${KEY.id}:${SECRET.slice(1)}`, `${KEY.id}:${SECRET.slice(1)}+`]) {
    const result = parseAdminKey(bad);
    assert.equal(result.ok, false, bad);
    assert.match(result.ok ? '' : result.error, /homeport keygen/);
  }
});
