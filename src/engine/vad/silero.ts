import { createRequire } from 'node:module';
import { copySamples, type AudioFrame } from '../audio/frame.js';
import { SpeechSegmenter } from './segmenter.js';
import { SileroBatcher, STATE_FLOATS, createSileroSession, inlineExecutor, sileroWindow, type BatchExecutor } from './sileroBatch.js';
import { startWorkerExecutor } from './sileroThread.js';
import { resolveVadOptions, type VadEvent, type VadOptions, type VoiceActivityDetector } from './types.js';

/**
 * Silero VAD v5 on onnxruntime-node.
 *
 * Model I/O: `input` float32 [1, C + W], `state` float32 [2, 1, 128], `sr` int64 scalar → `output` [1, 1]
 * (speech probability) and `stateN` [2, 1, 128]. W is 512 samples at 16 kHz / 256 at 8 kHz (32 ms); C is
 * the context, the last 64 (16 kHz) / 32 (8 kHz) samples of the previous window, zeros for the first —
 * as `OnnxWrapper.__call__` in silero-vad's utils_vad.py and @ricky0123/vad-web's `Silero.process` do.
 * Samples are PCM16 / 32768. `stateN` is fed back as the next `state`, per call.
 *
 * The model is loaded once per process (per model path) and shared. Detectors never run it themselves:
 * all recurrent state (the `state` tensor and the context) lives in each detector, and the windows of all
 * calls go through one `SileroBatcher` per sample rate, which runs them as batches in a worker thread
 * (see sileroBatch.ts), so concurrent calls never see each other's audio nor wait on the event loop.
 */

type Ort = typeof import('onnxruntime-node');

export interface SileroVadOptions extends VadOptions {
  /** Path of a Silero v5-compatible .onnx file. Default: the v5 model shipped in @ricky0123/vad-web. */
  modelPath?: string;
  /** 8000 or 16000. Default: taken from the first frame. */
  sampleRate?: number;
}

export interface SileroLoadOptions {
  /** Where batches run: a worker thread (default) or the calling thread. */
  thread?: 'worker' | 'inline';
}

export interface SileroRuntime {
  modelPath: string;
  /** Where inference runs; `inline` when asked for, or when no worker thread could start (`workerError`). */
  executor: BatchExecutor;
  workerError?: string;
  /** The process-wide batcher of one sample rate. */
  batcher(rate: 8000 | 16000): SileroBatcher;
}

const require = createRequire(import.meta.url);

/** The v5 model file inside the installed @ricky0123/vad-web package (never downloaded). */
export function defaultSileroModelPath(): string {
  return require.resolve('@ricky0123/vad-web/dist/silero_vad_v5.onnx');
}

const runtimes = new Map<string, Promise<SileroRuntime>>();

/**
 * Loads onnxruntime-node and the model once per process and model path; every later call gets the same
 * session. A failed load stays failed (the caller falls back; retrying a broken install per call would
 * only add latency).
 */
export function loadSileroRuntime(modelPath?: string, opts: SileroLoadOptions = {}): Promise<SileroRuntime> {
  const path = modelPath ?? defaultSileroModelPath();
  const thread = opts.thread ?? 'worker';
  const key = `${thread}:${path}`;
  let p = runtimes.get(key);
  if (!p) {
    p = (async () => {
      const ort = require('onnxruntime-node') as Ort;
      let executor: BatchExecutor | undefined;
      let workerError: string | undefined;
      if (thread === 'worker') {
        try {
          executor = await startWorkerExecutor(path); // the worker opens and checks the model itself
        } catch (err) {
          workerError = err instanceof Error ? err.message : String(err);
        }
      }
      // Inline by choice, or because no worker could start (which also tells a broken model from a broken thread).
      executor ??= inlineExecutor(ort, await createSileroSession(ort, path));
      const batchers = new Map<number, SileroBatcher>();
      const batcher = (rate: 8000 | 16000): SileroBatcher => {
        let b = batchers.get(rate);
        if (!b) {
          b = new SileroBatcher(executor, rate);
          batchers.set(rate, b);
        }
        return b;
      };
      return { modelPath: path, executor, workerError, batcher };
    })();
    p.catch(() => {}); // the rejection is handled by whoever awaits it
    runtimes.set(key, p);
  }
  return p;
}

export class SileroVad implements VoiceActivityDetector {
  readonly kind = 'silero' as const;
  private rate: number | undefined;
  private window = 0;
  private contextSize = 0;
  /** [context | window]; the window part fills from the frames. */
  private input = new Float32Array(0);
  private batcher: SileroBatcher | undefined;
  /** The model's recurrent state; the batcher writes each window's next state over it. */
  private readonly state = new Float32Array(STATE_FLOATS);
  private fill = 0;
  private windowStartMs = 0;
  private prob = 0;
  private readonly segmenter: SpeechSegmenter;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly runtime: SileroRuntime, opts: SileroVadOptions = {}) {
    this.segmenter = new SpeechSegmenter(resolveVadOptions(opts));
    if (opts.sampleRate !== undefined) this.configure(opts.sampleRate);
  }

  get sampleRate(): number | undefined { return this.rate; }
  get probability(): number { return this.prob; }
  get speaking(): boolean { return this.segmenter.speaking; }

  push(frame: AudioFrame): Promise<VadEvent[]> {
    if (this.closed) return Promise.reject(new Error('VAD is closed'));
    if (this.rate === undefined) {
      try { this.configure(frame.sampleRate); } catch (e) { return Promise.reject(e); }
    } else if (frame.sampleRate !== this.rate) {
      return Promise.reject(new Error(`VAD expects ${this.rate} Hz frames, got ${frame.sampleRate} Hz`));
    }
    const copy: AudioFrame = { samples: copySamples(frame.samples), sampleRate: frame.sampleRate, timestampMs: frame.timestampMs };
    return this.enqueue(() => this.process(copy));
  }

  flush(): Promise<VadEvent[]> {
    return this.enqueue(async () => this.segmenter.flush());
  }

  reset(): Promise<void> {
    return this.enqueue(async () => {
      this.state.fill(0);
      this.input.fill(0);
      this.fill = 0;
      this.prob = 0;
      this.segmenter.reset();
    });
  }

  close(): void {
    this.closed = true;
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.chain.then(fn);
    this.chain = result.catch(() => {});
    return result;
  }

  private configure(rate: number): void {
    if (rate !== 16000 && rate !== 8000) throw new RangeError(`Silero VAD supports 8000 or 16000 Hz, got ${rate}`);
    this.rate = rate;
    ({ window: this.window, context: this.contextSize } = sileroWindow(rate));
    this.input = new Float32Array(this.contextSize + this.window);
    this.batcher = this.runtime.batcher(rate);
  }

  private async process(frame: AudioFrame): Promise<VadEvent[]> {
    const events: VadEvent[] = [];
    const { samples } = frame;
    const msPerSample = 1000 / frame.sampleRate;
    const base = this.contextSize;
    let i = 0;
    while (i < samples.length) {
      if (this.fill === 0) this.windowStartMs = frame.timestampMs + i * msPerSample;
      const n = Math.min(this.window - this.fill, samples.length - i);
      for (let k = 0; k < n; k++) this.input[base + this.fill + k] = samples[i + k] / 32768;
      this.fill += n;
      i += n;
      if (this.fill === this.window) {
        this.fill = 0;
        const p = await this.infer();
        // next window's context = the last `contextSize` samples of this one
        this.input.copyWithin(0, this.input.length - this.contextSize);
        this.prob = p;
        const start = this.windowStartMs;
        for (const e of this.segmenter.update(start, start + this.window * msPerSample, p)) events.push(e);
      }
    }
    return events;
  }

  private infer(): Promise<number> {
    return this.batcher!.infer(this.input, this.state);
  }

}

/**
 * Closes every loaded runtime once its batches under way are done (a process should call it before it
 * exits: ending onnxruntime's worker mid-run aborts the process). Later detectors load the model again.
 */
export async function closeSileroRuntimes(): Promise<void> {
  const loaded = [...runtimes.values()];
  runtimes.clear();
  await Promise.allSettled(loaded.map(async (p) => (await p).executor.close()));
}

/** Loads (once per process) the shared session and returns a new per-call detector. */
export async function createSileroVad(opts: SileroVadOptions & SileroLoadOptions = {}): Promise<SileroVad> {
  const runtime = await loadSileroRuntime(opts.modelPath, { thread: opts.thread });
  return new SileroVad(runtime, opts);
}
