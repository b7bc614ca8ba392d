/**
 * The adapters built on a vendor SDK are imported when an agent first uses them, not when a node starts:
 * a node whose agents use none of them does not carry their ≈ 25 MB in its heap (marked again by every
 * full GC). Checked in a fresh process whose module hooks log every module it resolves.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cleanEnv, REPO_ROOT } from '../helpers/process.js';

const run = async (env: Record<string, string> = {}) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['bin/run-ts.mjs', 'test/helpers/sdkLoads.ts'], { cwd: REPO_ROOT, env: cleanEnv(env), timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
};

describe('vendor SDKs load on first use', () => {
  it('a started node has loaded none of the Google, Azure, Anthropic and Gemini SDKs; agents using them load them and resolve', async () => {
    const r = await run();
    expect(r.atStart).toEqual({ google: false, azure: false, anthropic: false, gemini: false });
    expect(r.afterUse).toEqual({ google: true, azure: true, anthropic: true, gemini: true });
    expect(r.used).toEqual([
      { stt: 'google_speech', llm: 'anthropic claude-3-5-haiku-latest', tts: 'openai alloy' },
      { stt: 'azure_speech', llm: 'google gemini-2.0-flash', tts: 'openai alloy' },
    ]);
  }, 90_000);

  it('SWITCHBOARD_PRELOAD_SDKS loads the ones it names at start-up, before any call', async () => {
    const r = await run({ SWITCHBOARD_PRELOAD_SDKS: 'google_speech, anthropic' });
    expect(r.atStart).toEqual({ google: true, azure: false, anthropic: true, gemini: false });
    expect((await run({ SWITCHBOARD_PRELOAD_SDKS: 'all' })).atStart).toEqual({ google: true, azure: true, anthropic: true, gemini: true });
  }, 90_000);
});
