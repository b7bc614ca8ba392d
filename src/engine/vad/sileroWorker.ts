/**
 * The Silero worker thread: loads the model once and runs the batches the main thread posts, one at a
 * time, so inference never holds up the event loop that carries the calls' audio.
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { createSileroSession, resultsIntoRequest, runBatch, type BatchRequest } from './sileroBatch.js';

type Ort = typeof import('onnxruntime-node');

const port = parentPort;
if (!port) throw new Error('sileroWorker runs only as a worker thread');
const require = createRequire(import.meta.url);

try {
  const ort = require('onnxruntime-node') as Ort;
  const session = await createSileroSession(ort, (workerData as { modelPath: string }).modelPath);
  port.on('message', (msg: { id: number; req: BatchRequest }) => {
    const { req } = msg;
    runBatch(ort, session, req).then(
      (fresh) => {
        const result = resultsIntoRequest(req, fresh);
        port.postMessage({ id: msg.id, result }, [req.input.buffer as ArrayBuffer, req.state.buffer as ArrayBuffer]);
      },
      (err: unknown) => port.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ ready: false, error: err instanceof Error ? err.message : String(err) });
}
