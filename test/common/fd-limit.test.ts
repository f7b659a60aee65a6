import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openFileLimit, parseOpenFileLimit } from '../../src/common/fd-limit.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

test('the soft open-file limit is read from /proc/<pid>/limits; unlimited or missing is unknown', () => {
  assert.equal(parseOpenFileLimit(LIMITS), 1024);
  assert.equal(parseOpenFileLimit(LIMITS.replace('1024 ', 'unlimited')), undefined);
  assert.equal(parseOpenFileLimit('Max cpu time unlimited unlimited seconds\n'), undefined);
  assert.equal(openFileLimit('/nonexistent/limits'), undefined, 'macOS has no /proc');
  if (process.platform === 'linux') assert.ok((openFileLimit() ?? 0) > 0, 'this process has one');
});
