import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * The real `switchboard` executable as a user runs it: `node bin/switchboard.mjs ...` in a child process,
 * with a clean environment (nothing of the test runner's DATABASE_URL & co leaks in).
 */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/switchboard.mjs', import.meta.url));

/** Variables Switchboard reads; they are removed from the inherited environment before each spawn. */
const OWN_VARS = /^(PORT|HOST|DATABASE_URL|DATA_DIR|PUBLIC_URL|LOG_LEVEL|DATABASE_POOL_SIZE|API_KEY_CACHE_SECONDS|MAX_BODY_BYTES|SWITCHBOARD_.*|TEST_DATABASE_URL|NODE_OPTIONS|VITEST.*)$/;

export function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !OWN_VARS.test(k)));
  return { ...base, ...env };
}

/** A port nobody listens on right now (bind port 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const children = new Set<ChildProcess>();

/** Kills (SIGKILL) every child this module started that is still alive; for afterAll. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  })));
  children.clear();
}

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs `switchboard <args>` to completion. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 45_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`switchboard ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  url: string;
  stdout(): string;
  stderr(): string;
  /** Sends the signal and waits for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `switchboard serve` on a free port and waits until GET /healthz answers 200. A start that loses
 * the port to another process (EADDRINUSE) is retried on another port.
 */
export async function startServe(env: Record<string, string>, timeoutMs = 45_000): Promise<ServeProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await startServeOn(port, env, timeoutMs);
    } catch (e) {
      lastError = e;
      if (!String((e as Error).message).includes('EADDRINUSE')) throw e;
    }
  }
  throw lastError;
}

async function startServeOn(port: number, env: Record<string, string>, timeoutMs: number): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve'], {
    cwd: REPO_ROOT, env: cleanEnv({ PORT: String(port), ...env }), stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { children.delete(child); resolve({ code, signal }); });
  });
  let done = false;
  exited.then(() => { done = true; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done) {
      const { code, signal } = await exited;
      throw new Error(`switchboard serve exited before it was healthy (code ${code}, signal ${signal})\nstdout: ${out}\nstderr: ${err}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`switchboard serve was not healthy within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`);
    }
    try {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 150));
  }
  return {
    child, port, url,
    stdout: () => out,
    stderr: () => err,
    stop: async (signal = 'SIGTERM', stopTimeoutMs = 20_000) => {
      if (!done) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      try { return await exited; } finally { clearTimeout(timer); }
    },
  };
}

/** A JSON client for one running server. */
export function client(baseUrl: string, key: string | null) {
  return async (path: string, init: { method?: string; body?: unknown; key?: string | null } = {}) => {
    const headers: Record<string, string> = {};
    const k = init.key === undefined ? key : init.key;
    if (k) headers.authorization = `Bearer ${k}`;
    let body: string | undefined;
    if (init.body !== undefined) { body = JSON.stringify(init.body); headers['content-type'] = 'application/json'; }
    const res = await fetch(baseUrl + path, { method: init.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body });
    const text = await res.text();
    let parsed: any = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body: parsed, headers: res.headers };
  };
}
