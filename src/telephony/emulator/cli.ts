/**
 * `switchboard emulate …`: run the local carrier emulator, or place a call through a running one.
 *
 *   serve [--port N] [--host H] [--account-sid AC…] [--auth-token T] [--number +1…]… [--voice-url URL]
 *         [--time-scale X] [--map PUBLIC=LOCAL]…
 *       Runs the emulator until interrupted; prints its URL and credentials and how to point Switchboard at it.
 *       --map sends webhooks and streams for a public URL prefix to a local one (signatures stay over the public URL).
 *   call --emulator URL --to NUMBER [--from NUMBER] [--wav FILE] [--record OUT.wav] [--seconds N]
 *       Places an inbound call to NUMBER (a number of the emulator's account) through the emulator's
 *       /_emulator control API, says FILE once the media stream is up, keeps the call N seconds
 *       (default: the audio plus 5 s), hangs up and writes what the agent said to OUT.wav.
 *
 * Exit codes: 0 done; 1 the call failed (no stream, protocol violations); 2 usage.
 * No Twilio document applies beyond those the emulator cites; this is the emulator's own tool.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { decodeWav } from '../../engine/audio/wav.js';
import { startEmulator } from './emulator.js';
import { prefixRewriter } from './webhook.js';

const USAGE = `switchboard emulate <command>

  serve [--port N] [--host H] [--account-sid AC…] [--auth-token TOKEN]
        [--number +1…]… [--voice-url URL] [--time-scale X] [--map PUBLIC_URL=LOCAL_URL]…
        run a local carrier emulator that speaks Twilio's REST API, webhooks and Media Streams
  call  --emulator URL --to NUMBER [--from NUMBER] [--wav FILE] [--record OUT.wav] [--seconds N]
        call NUMBER through a running emulator, say FILE, record the agent's answer
`;

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export async function runEmulatorCli(argv: string[], io: CliIo = process): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === 'serve') return await serve(rest, io);
    if (cmd === 'call') return await call(rest, io);
    if (cmd === 'help' || cmd === '--help' || cmd === '-h' || cmd === undefined) {
      (cmd === undefined ? io.stderr : io.stdout).write(USAGE);
      return cmd === undefined ? 2 : 0;
    }
    io.stderr.write(`unknown emulate command ${cmd}\n\n${USAGE}`);
    return 2;
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' }, host: { type: 'string' }, 'account-sid': { type: 'string' }, 'auth-token': { type: 'string' },
      number: { type: 'string', multiple: true }, 'voice-url': { type: 'string' }, 'time-scale': { type: 'string' },
      map: { type: 'string', multiple: true },
    },
  });
  const map: Record<string, string> = {};
  for (const pair of values.map ?? []) {
    const i = pair.indexOf('=');
    if (i <= 0 || i === pair.length - 1) { io.stderr.write(`--map wants PUBLIC_URL=LOCAL_URL, got ${pair}\n`); return 2; }
    map[pair.slice(0, i)] = pair.slice(i + 1);
  }
  const port = values.port !== undefined ? Number(values.port) : 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) { io.stderr.write('--port must be 0–65535\n'); return 2; }
  const emu = await startEmulator({
    port, host: values.host, accountSid: values['account-sid'], authToken: values['auth-token'],
    timeScale: values['time-scale'] !== undefined ? Number(values['time-scale']) : undefined,
    numbers: (values.number ?? []).map((phoneNumber) => ({ phoneNumber, voiceUrl: values['voice-url'] })),
    rewriteUrl: Object.keys(map).length ? prefixRewriter(map) : undefined,
  });
  const example = (values.number ?? [])[0] ?? '+14155550100';
  io.stdout.write(`Twilio emulator listening on ${emu.url}

  TWILIO_API_BASE_URL=${emu.url}
  TWILIO_ACCOUNT_SID=${emu.accountSid}
  TWILIO_AUTH_TOKEN=${emu.authToken}

Point Switchboard at it: start \`switchboard serve\` with the three variables above (and PUBLIC_URL set to
an address this emulator can reach, e.g. http://127.0.0.1:3000), or give an account_connection_twilio
these credentials. Numbers for sale: +1 {415,213,212,312,512,206,617,303,305,404} 555 0100–0199 and
toll-free +1 8xx 555 01xx; buy one through Switchboard's numbers API, then call it:

  switchboard emulate call --emulator ${emu.url} --to ${example} --wav hello.wav --record reply.wav

Control API (not Twilio's): ${emu.url}/_emulator — Ctrl-C stops.
`);
  const stop = () => { void emu.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return -1;
}

async function call(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      emulator: { type: 'string' }, to: { type: 'string' }, from: { type: 'string' }, wav: { type: 'string' },
      record: { type: 'string' }, seconds: { type: 'string' },
    },
  });
  if (!values.emulator || !values.to) { io.stderr.write(`call needs --emulator URL and --to NUMBER\n\n${USAGE}`); return 2; }
  const base = values.emulator.replace(/\/+$/, '');
  let wav: Uint8Array | undefined;
  let audioSec = 0;
  if (values.wav) {
    wav = new Uint8Array(await readFile(values.wav));
    const decoded = decodeWav(wav);
    audioSec = decoded.samples.length / decoded.sampleRate;
  }
  const seconds = values.seconds !== undefined ? Number(values.seconds) : audioSec + 5;
  if (!Number.isFinite(seconds) || seconds <= 0) { io.stderr.write('--seconds must be a positive number\n'); return 2; }

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any; bytes?: Uint8Array }> => {
    const res = await fetch(`${base}/_emulator${path}`, {
      method, headers: body !== undefined ? { 'content-type': 'application/json' } : undefined,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    if ((res.headers.get('content-type') ?? '').includes('audio/wav')) return { status: res.status, json: null, bytes: new Uint8Array(await res.arrayBuffer()) };
    const text = await res.text();
    let json: any = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = { error: text }; }
    return { status: res.status, json };
  };

  const placed = await api('POST', '/calls', {
    from: values.from ?? '+15005550006', to: values.to, wav: wav ? Buffer.from(wav).toString('base64') : undefined,
  });
  if (placed.status !== 201) { io.stderr.write(`emulator refused the call: ${placed.json?.error ?? `HTTP ${placed.status}`}\n`); return 1; }
  const sid: string = placed.json.sid;
  io.stdout.write(`call ${sid}: ${values.from ?? '+15005550006'} → ${values.to}\n`);

  const stream = await api('GET', `/calls/${sid}/wait?for=stream&timeoutMs=15000`);
  if (stream.status !== 200) {
    const summary = await api('GET', `/calls/${sid}`);
    io.stderr.write(`no media stream: the call is ${summary.json?.status ?? 'unknown'}${describeErrors(summary.json)}\n`);
    return 1;
  }
  io.stdout.write('media stream connected\n');
  const ended = await api('GET', `/calls/${sid}/wait?for=end&timeoutMs=${Math.round(seconds * 1000)}`);
  if (ended.status !== 200) await api('POST', `/calls/${sid}/hangup`, {});
  await api('GET', `/calls/${sid}/wait?for=end&timeoutMs=5000`);

  const summary = (await api('GET', `/calls/${sid}`)).json;
  const m = summary?.metrics ?? {};
  io.stdout.write(`status ${summary?.status}; agent audio ${Math.round(m.agentAudioMs ?? 0)} ms in ${m.agentSpeech?.length ?? 0} stretch(es)\n`);
  for (const l of m.responseLatencies ?? []) io.stdout.write(`response latency ${Math.round(l.latencyMs)} ms (caller stopped at ${Math.round(l.callerEndMs)} ms)\n`);
  const violations: Array<{ reason: string }> = summary?.protocolViolations ?? [];
  for (const v of violations) io.stderr.write(`protocol violation: ${v.reason}\n`);
  if (values.record) {
    const audio = await api('GET', `/calls/${sid}/agent.wav`);
    if (audio.bytes) {
      await writeFile(values.record, audio.bytes);
      io.stdout.write(`agent audio written to ${values.record}\n`);
    }
  }
  return violations.length ? 1 : 0;
}

function describeErrors(summary: any): string {
  const errors = (summary?.events ?? []).filter((e: any) => e.type === 'twiml-error' || (e.type === 'stream-end' && e.by === 'error'));
  return errors.length ? ` (${errors.map((e: any) => e.message ?? e.reason).join('; ')})` : '';
}
