import { createRequire } from 'node:module';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { AudioFrame } from '../audio/frame.js';
import { SpeechSegmenter } from './segmenter.js';
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
 * The InferenceSession is loaded once per process (per model path) and shared: ORT sessions are
 * stateless between runs, and all recurrent state (the `state` tensor and the context) lives in each
 * detector, so concurrent calls never see each other's audio.
 */

type Ort = typeof import('onnxruntime-node');

export interface SileroVadOptions extends VadOptions {
  /** Path of a Silero v5-compatible .onnx file. Default: the v5 model shipped in @ricky0123/vad-web. */
  modelPath?: string;
  /** 8000 or 16000. Default: taken from the first frame. */
  sampleRate?: number;
}

export interface SileroRuntime {
  ort: Ort;
  session: InferenceSession;
  modelPath: string;
  /** Time the load took, for logs. */
  loadMs: number;
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
export function loadSileroRuntime(modelPath?: string): Promise<SileroRuntime> {
  const path = modelPath ?? defaultSileroModelPath();
  let p = runtimes.get(path);
  if (!p) {
    p = (async () => {
      const t0 = performance.now();
      const ort = require('onnxruntime-node') as Ort;
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
      return { ort, session, modelPath: path, loadMs: performance.now() - t0 };
    })();
    p.catch(() => {}); // the rejection is handled by whoever awaits it
    runtimes.set(path, p);
  }
  return p;
}

const STATE_SIZE = 2 * 1 * 128;

export class SileroVad implements VoiceActivityDetector {
  readonly kind = 'silero' as const;
  private rate: number | undefined;
  private window = 0;
  private contextSize = 0;
  /** [context | window]; the window part fills from the frames. */
  private input = new Float32Array(0);
  private inputTensor: Tensor | undefined;
  private srTensor: Tensor | undefined;
  private state: Tensor;
  private fill = 0;
  private windowStartMs = 0;
  private prob = 0;
  private readonly segmenter: SpeechSegmenter;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly runtime: SileroRuntime, opts: SileroVadOptions = {}) {
    this.segmenter = new SpeechSegmenter(resolveVadOptions(opts));
    this.state = this.zeroState();
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
    const copy: AudioFrame = { samples: frame.samples.slice(), sampleRate: frame.sampleRate, timestampMs: frame.timestampMs };
    return this.enqueue(() => this.process(copy));
  }

  flush(): Promise<VadEvent[]> {
    return this.enqueue(async () => this.segmenter.flush());
  }

  reset(): Promise<void> {
    return this.enqueue(async () => {
      this.state = this.zeroState();
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
    const { ort } = this.runtime;
    this.rate = rate;
    this.window = rate === 16000 ? 512 : 256;
    this.contextSize = rate === 16000 ? 64 : 32;
    this.input = new Float32Array(this.contextSize + this.window);
    // The tensor wraps `input`; ORT copies it during run, and runs are serialized per detector.
    this.inputTensor = new ort.Tensor('float32', this.input, [1, this.input.length]);
    this.srTensor = new ort.Tensor('int64', BigInt64Array.of(BigInt(rate)), []);
  }

  private zeroState(): Tensor {
    return new this.runtime.ort.Tensor('float32', new Float32Array(STATE_SIZE), [2, 1, 128]);
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

  private async infer(): Promise<number> {
    const out = await this.runtime.session.run({ input: this.inputTensor!, state: this.state, sr: this.srTensor! });
    const stateN = out.stateN;
    const output = out.output;
    if (!stateN || !output) throw new Error('Silero VAD: model returned no output/stateN');
    this.state = stateN;
    return (output.data as Float32Array)[0];
  }
}

/** Loads (once per process) the shared session and returns a new per-call detector. */
export async function createSileroVad(opts: SileroVadOptions = {}): Promise<SileroVad> {
  const runtime = await loadSileroRuntime(opts.modelPath);
  return new SileroVad(runtime, opts);
}
