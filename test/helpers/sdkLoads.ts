/**
 * Run as its own process by test/providers/lazySdks.test.ts: which vendor SDKs a node has loaded after it
 * started the server, then after it resolved an agent on Google speech, Azure speech, Anthropic and Gemini.
 * Prints one JSON line. The SDKs are CommonJS packages, so the module cache tells whether they were loaded.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const SDKS = { google: '@google-cloud/speech', azure: 'microsoft-cognitiveservices-speech-sdk' };
const loaded = () => Object.fromEntries(Object.entries(SDKS).map(([k, pkg]) => [k, Object.keys(require.cache).some((p) => p.includes(`/node_modules/${pkg}/`))]));

await import('../../src/server.js');
const { resolveAgentProviders } = await import('../../src/providers/index.js');
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
console.log(JSON.stringify({ atStart, afterUse: loaded(), used }));
