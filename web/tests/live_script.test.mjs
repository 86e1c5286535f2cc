// The one script of the live pages (crates/server/static/live.js), run in node against
// stand-ins for the browser's EventSource, fetch, timers and DOM: which status events make
// a page fetch itself, when, and how often. (link_pages.test.mjs runs it in a real browser
// against a real server.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

const source = fs.readFileSync(path.resolve(import.meta.dirname, '../../crates/server/static/live.js'), 'utf8');

/// A page running live.js: `status(data)` sends it an event, `timers` are the waits it
/// asked for (run one with `fire`), `fetches` the fetches it made (each answered by
/// `answer`).
function livePage(random) {
  const page = { timers: [], fetches: [], swapped: 0 };
  let listener = null;
  const main = { replaceWith: () => page.swapped++ };
  const sandbox = {
    window: { location: { href: 'http://127.0.0.1/my?token=t' }, EventSource: true, fetch: true },
    document: { querySelector: () => main, activeElement: null },
    EventSource: class {
      addEventListener(name, f) {
        assert.equal(name, 'status');
        listener = f;
      }
    },
    fetch: (url) =>
      new Promise((resolve) => page.fetches.push({ url, answer: () => resolve({ ok: true, text: async () => '<main></main>' }) })),
    DOMParser: class {
      parseFromString() {
        return { querySelector: () => ({}) };
      }
    },
    setTimeout: (f, ms) => page.timers.push({ f, ms }),
    Math: { random },
  };
  vm.runInNewContext(source, sandbox);
  page.status = (data) => listener({ data });
  page.fire = () => page.timers.shift().f();
  return page;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a change of status makes the page fetch itself after a random wait of up to two seconds', async () => {
  const page = livePage(() => 0.75);
  page.status('a');
  assert.equal(page.timers.length, 0, 'the first event only says where the status is');
  page.status('a');
  assert.equal(page.timers.length, 0, 'no change, no fetch');
  page.status('b');
  assert.deepEqual(page.timers.map((t) => t.ms), [1500], 'three quarters of the two seconds');
  assert.equal(page.fetches.length, 0, 'nothing fetched before its moment');
  page.fire();
  assert.equal(page.fetches.length, 1);
  assert.equal(page.fetches[0].url, 'http://127.0.0.1/my?token=t');
  page.fetches[0].answer();
  await settle();
  assert.equal(page.swapped, 1, 'the new <main> is swapped in');
});

test('changes while a fetch waits are one fetch; a change during a fetch is one more after it', async () => {
  const page = livePage(() => 0.5);
  page.status('a');
  page.status('b');
  page.status('c');
  assert.equal(page.timers.length, 1, 'one fetch waiting for its moment');
  page.fire();
  page.status('d');
  page.status('e');
  assert.equal(page.timers.length, 0, 'the fetch under way is not doubled');
  page.fetches[0].answer();
  await settle();
  assert.equal(page.timers.length, 1, 'the change during the fetch is fetched again');
  page.fire();
  page.fetches[1].answer();
  await settle();
  assert.deepEqual([page.fetches.length, page.swapped, page.timers.length], [2, 2, 0]);
});
