import { EnergyVad, type EnergyVadOptions } from './energy.js';
import { SileroVad, loadSileroRuntime, type SileroRuntime, type SileroVadOptions, type SileroLoadOptions } from './silero.js';
import type { VoiceActivityDetector } from './types.js';

export * from './types.js';
export { SpeechSegmenter } from './segmenter.js';
export { EnergyVad, createEnergyVad, type EnergyVadOptions } from './energy.js';
export { SileroVad, createSileroVad, loadSileroRuntime, closeSileroRuntimes, defaultSileroModelPath, type SileroVadOptions, type SileroRuntime, type SileroLoadOptions } from './silero.js';

/** The part of a pino Logger the factory uses. */
export interface VadLogger {
  warn(obj: object, msg: string): void;
}

const warnedInline = new WeakSet<SileroRuntime>();

export type CreateVadOptions =
  | ({ kind: 'silero'; logger?: VadLogger; /** Energy-specific options used if Silero cannot load. */ energy?: EnergyVadOptions } & SileroVadOptions & SileroLoadOptions)
  | ({ kind: 'energy'; logger?: VadLogger } & EnergyVadOptions);

/**
 * One detector per call. `silero` loads onnxruntime-node and the model once per process (later calls
 * share the session); if that fails, it logs a warning and returns an energy detector with the same
 * timing options (minSpeechMs, minSilenceMs, speechPadMs, sampleRate) plus `energy`.
 */
export async function createVad(opts: CreateVadOptions): Promise<VoiceActivityDetector> {
  if (opts.kind === 'energy') {
    const { kind: _k, logger: _l, ...energy } = opts;
    return new EnergyVad(energy);
  }
  const { kind: _k, logger, energy, ...silero } = opts;
  let runtime: SileroRuntime;
  try {
    runtime = await loadSileroRuntime(silero.modelPath, { thread: silero.thread });
  } catch (err) {
    const warn = logger ? (o: object, m: string) => logger.warn(o, m) : (o: object, m: string) => console.warn(m, o);
    warn({ err, modelPath: silero.modelPath }, 'Silero VAD unavailable (onnxruntime-node or model failed to load); using the energy VAD');
    return new EnergyVad({
      minSpeechMs: silero.minSpeechMs,
      minSilenceMs: silero.minSilenceMs,
      speechPadMs: silero.speechPadMs,
      sampleRate: silero.sampleRate,
      ...energy,
    });
  }
  if (runtime.workerError && !warnedInline.has(runtime)) {
    warnedInline.add(runtime);
    (logger ?? { warn: (o: object, m: string) => console.warn(m, o) }).warn({ err: runtime.workerError }, 'Silero VAD worker thread could not start; inference runs on the main thread');
  }
  return new SileroVad(runtime, silero); // bad options throw here: a configuration error, not a fallback case
}
