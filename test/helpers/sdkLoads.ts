/**
 * Run as its own process by test/providers/lazySdks.test.ts: which vendor SDKs a node has loaded once its
 * server is up, then after it resolved agents on Google speech, Azure speech, Anthropic and Gemini.
 * Module hooks log every module the process resolves; prints one JSON line.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'sb-sdk-loads-'));
const log = join(dir, 'resolved.txt');
writeFileSync(log, '');
register(new URL('./resolveLog.mjs', import.meta.url), { data: { log } });

const SDKS = {
  google: '@google-cloud/speech', azure: 'microsoft-cognitiveservices-speech-sdk', anthropic: '@anthropic-ai/sdk', gemini: '@google/genai',
};
const loaded = () => {
  const urls = readFileSync(log, 'utf8');
  return Object.fromEntries(Object.entries(SDKS).map(([k, pkg]) => [k, urls.includes(`/node_modules/${pkg}/`)]));
};

const { loadConfig } = await import('../../src/config.js');
const { startServer } = await import('../../src/server.js');
const { createLogger } = await import('../../src/log.js');
const { resolveAgentProviders } = await import('../../src/providers/index.js');
// As `npm start` runs it (in memory), with SWITCHBOARD_PRELOAD_SDKS from this process's environment.
const server = await startServer(loadConfig({
  PORT: '0', HOST: '127.0.0.1', DATA_DIR: 'memory://', SWITCHBOARD_SECRET_KEY: 'a'.repeat(64),
  SWITCHBOARD_PRELOAD_SDKS: process.env.SWITCHBOARD_PRELOAD_SDKS,
}), { log: createLogger('silent'), print: () => {} });
const atStart = loaded();
const ctx = {
  lookup: { byId: async () => null, latestOfType: async () => null },
  env: { GOOGLE_API_KEY: 'g', AZURE_SPEECH_KEY: 'a', AZURE_SPEECH_REGION: 'westeurope', ANTHROPIC_API_KEY: 'k', GEMINI_API_KEY: 'k', OPENAI_API_KEY: 'o' },
};
const voice = { type: 'voice_openai', voice: 'alloy' };
const used = [];
for (const agent of [
  { transcriber: { type: 'transcriber_google' }, provider: 'anthropic', voice },
  { transcriber: { type: 'transcriber_azure' }, provider: 'google', voice },
]) {
  const p = await resolveAgentProviders(agent, ctx);
  used.push(p.summary);
  await p.dispose();
}
await server.close();
console.log(JSON.stringify({ atStart, afterUse: loaded(), used }));
rmSync(dir, { recursive: true, force: true });
