import type { InferenceSession } from 'onnxruntime-node';

/**
 * Batched Silero inference shared by every call of the process.
 *
 * One `session.run` costs about as much for one 32 ms window as for a dozen: most of it is per-run
 * overhead (N-API marshalling, graph setup), not arithmetic. So detectors do not run the model
 * themselves; they hand their window and recurrent state to a batcher, which runs every window that is
 * waiting as one batch (Silero v5 takes `input` [B, C + W] and `state` [2, B, 128]; rows never mix).
 * On a quiet node a window runs at once (one turn of the event loop at most). On a busy one (from about
 * eight calls) a batch waits up to GATHER_MS from its first window for the others: calls run on their
 * own media clocks, so their windows arrive spread over time, and running each as it came would be
 * mostly overhead.
 *
 * The batch runs in a worker thread by default, so inference never stalls the event loop that carries the
 * calls' audio; `inline` runs it on the calling thread (the fallback when no worker can start).
 */

export const STATE_FLOATS = 2 * 128;
/** Above this many rows a batch is split: bounds the time one run keeps later windows waiting. */
export const MAX_BATCH_ROWS = 128;
/** How long a busy node's batch waits for more windows: a quarter of a window, well inside VAD's own 80 ms. */
const GATHER_MS = 8;
/** Windows a second from which the node counts as busy: about eight calls (31 windows a second each). */
const BUSY_WINDOWS_PER_S = 250;

export interface BatchRequest {
  /** Rows of `rowLength` floats: [context | window] per detector. */
  input: Float32Array;
  /** Rows' states in the model's layout, [2, rows, 128]. */
  state: Float32Array;
  rows: number;
  rowLength: number;
  rate: number;
}

export interface BatchResult {
  /** Speech probability per row. */
  output: Float32Array;
  /** Next states, [2, rows, 128]. */
  state: Float32Array;
}

/**
 * The worker writes a batch's results into the request's own arrays and moves them back (`output` over the
 * start of `input`, `state` over `state`): the arrays go to and fro, and a batch makes no ArrayBuffer on
 * the event loop's thread.
 */
export function resultsIntoRequest(req: BatchRequest, r: BatchResult): BatchResult {
  const output = req.input.subarray(0, req.rows);
  output.set(r.output.subarray(0, req.rows));
  req.state.set(r.state);
  return { output, state: req.state };
}

/** Runs one batch of the model: in this thread, or in a worker. */
export interface BatchExecutor {
  readonly mode: 'worker' | 'inline';
  run(req: BatchRequest): Promise<BatchResult>;
  close(): Promise<void>;
}

type Ort = typeof import('onnxruntime-node');

/** Samples per model window and of the context prepended to it: 32 ms at either rate. */
export function sileroWindow(rate: 8000 | 16000): { window: number; context: number } {
  return rate === 16000 ? { window: 512, context: 64 } : { window: 256, context: 32 };
}

/** Opens the model (in whichever thread runs it) and checks it is a Silero v5 graph. */
export async function createSileroSession(ort: Ort, path: string): Promise<InferenceSession> {
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  for (const name of ['input', 'state', 'sr']) {
    if (!session.inputNames.includes(name)) throw new Error(`${path} is not a Silero v5 model: no input "${name}"`);
  }
  for (const name of ['output', 'stateN']) {
    if (!session.outputNames.includes(name)) throw new Error(`${path} is not a Silero v5 model: no output "${name}"`);
  }
  return session;
}

/** The model run itself, shared by the inline executor and the worker. */
export async function runBatch(ort: Ort, session: InferenceSession, req: BatchRequest): Promise<BatchResult> {
  const out = await session.run({
    input: new ort.Tensor('float32', req.input, [req.rows, req.rowLength]),
    state: new ort.Tensor('float32', req.state, [2, req.rows, 128]),
    sr: new ort.Tensor('int64', BigInt64Array.of(BigInt(req.rate)), []),
  });
  const output = out.output?.data;
  const state = out.stateN?.data;
  if (!(output instanceof Float32Array) || !(state instanceof Float32Array)) throw new Error('Silero VAD: model returned no output/stateN');
  if (output.length < req.rows || state.length !== STATE_FLOATS * req.rows) throw new Error('Silero VAD: model output has the wrong shape for the batch');
  return { output, state };
}

export function inlineExecutor(ort: Ort, session: InferenceSession): BatchExecutor {
  return { mode: 'inline', run: (req) => runBatch(ort, session, req), close: async () => {} };
}

interface Pending {
  /** When it was queued (performance.now()). */
  at: number;
  input: Float32Array;
  state: Float32Array;
  resolve(probability: number): void;
  reject(err: unknown): void;
}

/** Queues windows of one sample rate and runs them in batches, one batch at a time. */
export class SileroBatcher {
  private queue: Pending[] = [];
  private running = false;
  private scheduled = false;
  /** A busy node's batch gathering windows. */
  private gathering?: NodeJS.Timeout;
  /** Arrival rate (windows a second), measured over about a second. */
  private ratePerS = 0;
  private counted = 0;
  private countedSince = performance.now();
  /** Rows run and runs made, for the benchmark and /metrics-style introspection. */
  readonly stats = { runs: 0, rows: 0 };

  private readonly rowLength: number;

  constructor(private readonly executor: BatchExecutor, readonly rate: 8000 | 16000) {
    const { window, context } = sileroWindow(rate);
    this.rowLength = window + context;
  }

  /**
   * One window ([context | window]) and its recurrent state in; its speech probability out, and the next
   * state written over `state`. The caller leaves both arrays alone until the promise settles (a
   * detector awaits each window), so nothing is copied here but into the batch.
   */
  infer(input: Float32Array, state: Float32Array): Promise<number> {
    const at = performance.now();
    if (at - this.countedSince >= 1000) {
      this.ratePerS = (this.counted * 1000) / (at - this.countedSince);
      this.counted = 0;
      this.countedSince = at;
    }
    this.counted++;
    return new Promise((resolve, reject) => {
      this.queue.push({ at, input, state, resolve, reject });
      // A full batch does not wait for more.
      if (this.gathering && this.queue.length >= MAX_BATCH_ROWS) {
        clearTimeout(this.gathering);
        this.gathering = undefined;
        this.scheduled = false;
      }
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    const run = () => { this.scheduled = false; this.gathering = undefined; void this.drain(); };
    const wait = this.ratePerS >= BUSY_WINDOWS_PER_S ? this.queue[0].at + GATHER_MS - performance.now() : 0;
    // Quiet: the windows that arrive in this same turn of the event loop join the batch. Busy: those that
    // arrive within GATHER_MS of the first.
    if (wait > 0 && this.queue.length < MAX_BATCH_ROWS) this.gathering = setTimeout(run, wait);
    else setImmediate(run);
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.runOne(this.queue.splice(0, MAX_BATCH_ROWS));
    } finally {
      this.running = false;
      // What queued meanwhile forms the next batch, on the same terms.
      this.schedule();
    }
  }

  /** The batch arrays (room for MAX_BATCH_ROWS), reused: one batch runs at a time. */
  private arrays?: { input: Float32Array; state: Float32Array };

  /** The pair a finished batch gave back, or a new one (a failed batch, e.g. a dead worker's, keeps its pair). */
  private takeArrays(): { input: Float32Array; state: Float32Array } {
    const a = this.arrays ?? { input: new Float32Array(MAX_BATCH_ROWS * this.rowLength), state: new Float32Array(MAX_BATCH_ROWS * STATE_FLOATS) };
    this.arrays = undefined;
    return a;
  }

  private async runOne(batch: Pending[]): Promise<void> {
    const rows = batch.length;
    const arrays = this.takeArrays();
    const input = arrays.input.subarray(0, rows * this.rowLength);
    const state = arrays.state.subarray(0, rows * STATE_FLOATS);
    for (let b = 0; b < rows; b++) {
      input.set(batch[b].input, b * this.rowLength);
      // [2, B, 128]: first the rows' h halves, then their c halves.
      state.set(batch[b].state.subarray(0, 128), b * 128);
      state.set(batch[b].state.subarray(128), (rows + b) * 128);
    }
    let result: BatchResult;
    try {
      result = await this.executor.run({ input, state, rows, rowLength: this.rowLength, rate: this.rate });
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    // Inline, the arrays never left; from a worker, the results arrive in them (resultsIntoRequest).
    this.arrays = arrays.input.byteLength > 0 ? arrays
      : { input: new Float32Array(result.output.buffer), state: new Float32Array(result.state.buffer) };
    this.stats.runs++;
    this.stats.rows += rows;
    for (let b = 0; b < rows; b++) {
      const { state: own } = batch[b];
      own.set(result.state.subarray(b * 128, (b + 1) * 128), 0);
      own.set(result.state.subarray((rows + b) * 128, (rows + b + 1) * 128), 128);
      batch[b].resolve(result.output[b]);
    }
  }
}
