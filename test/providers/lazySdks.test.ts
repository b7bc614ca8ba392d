/**
 * The adapters built on a vendor SDK are imported when an agent first uses them, not when a node starts:
 * a node whose agents use none of them does not carry their ≈ 25 MB in its heap (marked again by every
 * full GC). Checked in a fresh process, whose module cache holds only what it loaded itself.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cleanEnv, REPO_ROOT } from '../helpers/process.js';

describe('vendor SDKs load on first use', () => {
  it('a started node has not loaded the Google or Azure speech SDKs; an agent using them loads them and resolves', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/run-ts.mjs', 'test/helpers/sdkLoads.ts'], { cwd: REPO_ROOT, env: cleanEnv({}), timeout: 60_000 });
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(r.atStart).toEqual({ google: false, azure: false });
    expect(r.afterUse).toEqual({ google: true, azure: true });
    expect(r.used).toEqual([
      { stt: 'google_speech', llm: 'anthropic claude-3-5-haiku-latest', tts: 'openai alloy' },
      { stt: 'azure_speech', llm: 'google gemini-2.0-flash', tts: 'openai alloy' },
    ]);
  }, 90_000);
});
