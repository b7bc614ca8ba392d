import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BatchExecutor, BatchRequest, BatchResult } from './sileroBatch.js';

const require = createRequire(import.meta.url);

/**
 * The code a worker starts with: the sources run as TypeScript through tsx (no build step), and a worker
 * thread does not inherit the main thread's loader, so it registers tsx itself before loading the worker.
 */
function bootstrap(): string {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return `import(${JSON.stringify(new URL('./sileroWorker.js', here).href)})`;
  const tsx = pathToFileURL(join(dirname(require.resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const worker = new URL('./sileroWorker.ts', here).href;
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(worker)}); })`;
}

type Reply = { id: number; result?: BatchResult; error?: string };

/** How long closing waits for batches under way (each takes milliseconds). */
const CLOSE_WAIT_MS = 2000;

/**
 * Starts the Silero worker thread and resolves once its model is loaded. A worker that dies fails the
 * batches it held; the next batch starts a new one. The thread is unreferenced while idle, so it never
 * keeps a finished process alive.
 */
export async function startWorkerExecutor(modelPath: string): Promise<BatchExecutor> {
  let worker: Promise<Worker> | undefined;
  const pending = new Map<number, { resolve(r: BatchResult): void; reject(e: unknown): void }>();
  let nextId = 1;
  let closed = false;
  /** Called once no batch is pending: closing waits for that (terminating mid-run aborts onnxruntime-node). */
  let drained: (() => void) | undefined;

  const spawn = (): Promise<Worker> => new Promise((resolve, reject) => {
    const w = new Worker(bootstrap(), { eval: true, workerData: { modelPath } });
    let ready = false;
    const fail = (err: unknown): void => {
      if (worker && ready) worker = undefined; // the next batch starts a fresh thread
      for (const p of pending.values()) p.reject(err);
      pending.clear();
      drained?.();
      if (!ready) reject(err);
    };
    w.on('message', (msg: Reply | { ready: boolean; error?: string }) => {
      if ('ready' in msg) {
        if (msg.ready) { ready = true; w.unref(); resolve(w); } else { void w.terminate(); reject(new Error(`Silero worker could not load ${modelPath}: ${msg.error}`)); }
        return;
      }
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (pending.size === 0) { w.unref(); drained?.(); }
      if (msg.error !== undefined || !msg.result) p.reject(new Error(`Silero VAD: ${msg.error ?? 'no result'}`));
      else p.resolve(msg.result);
    });
    w.on('error', fail);
    w.on('exit', (code) => { if (!closed) fail(new Error(`Silero worker exited (code ${code})`)); });
  });

  worker = spawn();
  await worker;
  return {
    mode: 'worker',
    async run(req: BatchRequest): Promise<BatchResult> {
      if (closed) throw new Error('Silero worker is closed');
      worker ??= spawn();
      let w: Worker;
      try {
        w = await worker;
      } catch (err) {
        worker = undefined; // try a fresh thread next time
        throw err;
      }
      const id = nextId++;
      return new Promise<BatchResult>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        w.ref();
        w.postMessage({ id, req }, [req.input.buffer as ArrayBuffer, req.state.buffer as ArrayBuffer]);
      });
    },
    async close(): Promise<void> {
      closed = true;
      if (pending.size > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, CLOSE_WAIT_MS).unref();
        });
      }
      const w = await worker?.catch(() => undefined);
      await w?.terminate();
    },
  };
}
