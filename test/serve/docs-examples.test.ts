import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { ROOT, tempDir } from '../support/cli.js';
import { eventually, expectVerifyClean, startServer, stopServers } from './helpers.js';

// The curl lines of docs/serve.md's Examples, run as written against a real `saga serve`
// (only the address changes: the test's server listens on a free port).

const run = promisify(execFile);
afterAll(stopServers);

function curlExamples(): string[] {
  const doc = readFileSync(join(ROOT, 'docs/serve.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Examples'));
  const block = /```sh no-test\n([\s\S]*?)```/.exec(section)![1]!;
  return block.split('\n').filter((line) => line.startsWith('curl '));
}

describe('the curl examples of docs/serve.md', () => {
  const backend = BACKENDS[0]!;

  it('each answers as the doc says: a 2xx, JSON, the event stream, the metrics', async () => {
    const cwd = tempDir('saga-serve-docs-');
    const db = await backend.seededDb(cwd);
    const server = await startServer(['--allow-faults'], { cwd, env: { SAGA_DB: db, SAGA_LOG_FILE: join(cwd, 'saga.log') } });
    const examples = curlExamples();
    expect(examples.length).toBeGreaterThanOrEqual(6);
    for (const example of examples) {
      const streams = example.includes('/api/events');
      // The event stream never ends by itself: read it for a second.
      const line = example.replaceAll('localhost:3000', server.url.replace('http://', '')) + (streams ? ' --max-time 1' : '');
      const r = await run('bash', ['-c', line]).catch((err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }));
      const code = 'code' in r ? r.code : 0;
      // curl's 28: the time limit ended the stream, as asked.
      expect({ example, code }).toEqual({ example, code: streams ? 28 : 0 });
      const out = r.stdout;
      if (streams) expect(out).toMatch(/^id: 1\nevent: saga\ndata: \{/m);
      else if (example.includes('/metrics')) expect(out).toMatch(/^saga_started_total \d+$/m);
      else if (example.includes(' -si ')) expect(out, example).toMatch(/^HTTP\/1\.1 20[12] /);
      else expect(JSON.parse(out) as unknown, example).not.toHaveProperty('type', 'about:blank');
    }
    // The cancelled checkout rolls back after its 202 (its payment times out first): verify once
    // every saga the examples started has ended.
    await eventually(async () => {
      const open = await Promise.all(['running', 'compensating'].map(async (status) => ((await (await fetch(`${server.url}/api/sagas?status=${status}`)).json()) as { sagas: unknown[] }).sagas.length));
      return open.every((n) => n === 0) ? true : undefined;
    }, 'the sagas of the examples to end');
    await expectVerifyClean(db, cwd);
  });
});
