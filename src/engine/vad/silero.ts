import { createRequire } from 'node:module';
import type { AudioFrame } from '../audio/frame.js';
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

/**
 * A push (or flush / reset) waiting for the windows its samples complete, in call order. `until` is the
 * absolute sample count once its samples are in; it settles when no window ending by `until` is left.
 */
interface Waiter {
  until: number;
  events?: VadEvent[];
  /** A flush or reset: done when the waiter is reached. */
  op?: 'flush' | 'reset';
  resolve(events: VadEvent[] | undefined): void;
  reject(err: unknown): void;
}

export class SileroVad implements VoiceActivityDetector {
  readonly kind = 'silero' as const;
  private rate: number | undefined;
  private window = 0;
  private contextSize = 0;
  private msPerSample = 0;
  /** [context | window]: the window being run, its context the end of the window before. */
  private input = new Float32Array(0);
  private batcher: SileroBatcher | undefined;
  /** The model's recurrent state; the batcher writes each window's next state over it. */
  private readonly state = new Float32Array(STATE_FLOATS);
  /**
   * Samples pushed but not yet in a window, already scaled to ±1: pushing copies into this (no array or
   * closure per 20 ms frame), and the windows are cut from it one model run at a time.
   */
  private stage = new Float32Array(4096);
  private stageLen = 0;
  /** Absolute index (samples pushed since the start) of stage[0]. */
  private stageStart = 0;
  /** Where each pushed frame starts (absolute sample index) and its timestamp: events follow the frames' timeline. */
  private frameAt: number[] = [];
  private frameMs: number[] = [];
  private waiters: Waiter[] = [];
  private running = false;
  private prob = 0;
  private readonly segmenter: SpeechSegmenter;
  private closed = false;

  constructor(private readonly runtime: SileroRuntime, opts: SileroVadOptions = {}) {
    this.segmenter = new SpeechSegmenter(resolveVadOptions(opts));
    if (opts.sampleRate !== undefined) this.configure(opts.sampleRate);
  }

  get sampleRate(): number | undefined { return this.rate; }
  get probability(): number { return this.prob; }
  get speaking(): boolean { return this.segmenter.speaking; }

  /** Samples pushed since the start: the absolute index just past the newest staged one. */
  private get pushed(): number { return this.stageStart + this.stageLen; }

  push(frame: AudioFrame): Promise<VadEvent[]> {
    if (this.closed) return Promise.reject(new Error('VAD is closed'));
    if (this.rate === undefined) {
      try { this.configure(frame.sampleRate); } catch (e) { return Promise.reject(e); }
    } else if (frame.sampleRate !== this.rate) {
      return Promise.reject(new Error(`VAD expects ${this.rate} Hz frames, got ${frame.sampleRate} Hz`));
    }
    const { samples } = frame;
    if (samples.length === 0) return this.wait(this.pushed);
    if (this.stageLen + samples.length > this.stage.length) {
      const grown = new Float32Array(Math.max(this.stage.length * 2, this.stageLen + samples.length));
      grown.set(this.stage.subarray(0, this.stageLen));
      this.stage = grown;
    }
    this.frameAt.push(this.pushed);
    this.frameMs.push(frame.timestampMs);
    const at = this.stageLen;
    for (let k = 0; k < samples.length; k++) this.stage[at + k] = samples[k] / 32768;
    this.stageLen += samples.length;
    // Nothing in flight and no window completed: the frame's answer is known now.
    if (!this.running && this.waiters.length === 0 && this.stageLen < this.window) return Promise.resolve([]);
    return this.wait(this.pushed);
  }

  flush(): Promise<VadEvent[]> {
    return this.wait(this.pushed, 'flush');
  }

  reset(): Promise<void> {
    // Resolves with nothing (settle), and with no extra step that would let a later push's answer overtake it.
    return this.wait(this.pushed, 'reset') as Promise<unknown> as Promise<void>;
  }

  close(): void {
    this.closed = true;
  }

  private wait(until: number, op?: Waiter['op']): Promise<VadEvent[]> {
    const p = new Promise<VadEvent[]>((resolve, reject) => { this.waiters.push({ until, op, resolve: resolve as Waiter['resolve'], reject }); });
    if (!this.running) void this.pump();
    return p;
  }

  private configure(rate: number): void {
    if (rate !== 16000 && rate !== 8000) throw new RangeError(`Silero VAD supports 8000 or 16000 Hz, got ${rate}`);
    this.rate = rate;
    ({ window: this.window, context: this.contextSize } = sileroWindow(rate));
    this.msPerSample = 1000 / rate;
    this.input = new Float32Array(this.contextSize + this.window);
    this.batcher = this.runtime.batcher(rate);
  }

  /** Forgets the first `n` staged samples (and the frames that started in them but the last). */
  private drop(n: number): void {
    this.stage.copyWithin(0, n, this.stageLen);
    this.stageLen -= n;
    this.stageStart += n;
    while (this.frameAt.length > 1 && this.frameAt[1] <= this.stageStart) { this.frameAt.shift(); this.frameMs.shift(); }
  }

  /** Timestamp of the staged sample at absolute index `i`. */
  private timeOf(i: number): number {
    let f = 0;
    while (f + 1 < this.frameAt.length && this.frameAt[f + 1] <= i) f++;
    return this.frameMs[f] + (i - this.frameAt[f]) * this.msPerSample;
  }

  /** Runs the staged windows one at a time (each needs the state the one before left) and settles the waiters. */
  private async pump(): Promise<void> {
    this.running = true;
    try {
      let deferred: Waiter | undefined;
      for (;;) {
        // Settle what no window is left for (everything, before the first frame set the window).
        while (this.waiters.length && (this.window === 0 || this.waiters[0].until < this.stageStart + this.window)) {
          const head = this.waiters[0];
          if (head.op && deferred !== head) {
            // A flush or reset changes what the pushes answered before it report: their handlers run first.
            deferred = head;
            await null;
            continue;
          }
          this.settle(this.waiters.shift()!);
        }
        if (this.waiters.length === 0 || this.stageLen < this.window) return;
        // The head waiter's samples complete this window: its events are the window's.
        const owner = this.waiters[0];
        const startMs = this.timeOf(this.stageStart);
        this.input.set(this.stage.subarray(0, this.window), this.contextSize);
        this.drop(this.window);
        let p: number;
        try {
          p = await this.batcher!.infer(this.input, this.state);
        } catch (err) {
          // As if the frame had not arrived: the rest of its samples go with the window that failed.
          this.waiters.shift();
          this.drop(Math.max(0, Math.min(owner.until - this.stageStart, this.stageLen)));
          owner.reject(err);
          continue;
        }
        // The next window's context is the end of this one.
        this.input.copyWithin(0, this.input.length - this.contextSize);
        this.prob = p;
        const events = this.segmenter.update(startMs, startMs + this.window * this.msPerSample, p);
        if (events.length) (owner.events ??= []).push(...events);
      }
    } finally {
      this.running = false;
    }
  }

  private settle(w: Waiter): void {
    if (w.op === 'flush') return w.resolve(this.segmenter.flush());
    if (w.op === 'reset') {
      // What was pushed before the reset and made no whole window is forgotten with the rest.
      this.drop(w.until - this.stageStart);
      this.state.fill(0);
      this.input.fill(0);
      this.prob = 0;
      this.segmenter.reset();
      return w.resolve(undefined);
    }
    w.resolve(w.events ?? []);
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
