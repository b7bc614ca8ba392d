/**
 * Call figures for `/metrics`: calls running on this node, how calls end, and each turn's latencies as the
 * engine measured them (the caller's end of speech to the first agent audio sent, and the stages between).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TurnMetrics } from '../engine/index.js';
import type { MediaTotals } from '../telephony/mediaStream.js';

const BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];

export class CallMetrics {
  private readonly ended: Counter;
  private readonly turn: Histogram;
  /** Bumped by every media stream on every frame (plain numbers; read when /metrics is scraped). */
  readonly media: MediaTotals = { framesIn: 0, lateIn: 0, framesOut: 0, lateOut: 0 };

  constructor(registry: Registry, activeCalls: () => number) {
    new Gauge({
      name: 'switchboard_active_calls', help: 'Calls whose media stream this process is running', registers: [registry],
      collect() { this.set(activeCalls()); },
    });
    this.ended = new Counter({
      name: 'switchboard_calls_ended_total', help: 'Calls ended on this process, by provider, status and stage outcome',
      labelNames: ['provider', 'status', 'outcome'], registers: [registry],
    });
    const media = this.media;
    new Counter({
      name: 'switchboard_media_frames_total', help: 'Carrier media frames (20 ms): in = caller audio received, out = agent audio sent',
      labelNames: ['direction'], registers: [registry],
      collect() { this.reset(); this.inc({ direction: 'in' }, media.framesIn); this.inc({ direction: 'out' }, media.framesOut); },
    });
    new Counter({
      name: 'switchboard_media_frames_late_total',
      help: 'Late media frames: in = caller frames that reached us > 20 ms behind the carrier\'s timestamps (network jitter plus our event-loop delay); out = agent frames sent > 20 ms after their play-out time though ready (an audible gap)',
      labelNames: ['direction'], registers: [registry],
      collect() { this.reset(); this.inc({ direction: 'in' }, media.lateIn); this.inc({ direction: 'out' }, media.lateOut); },
    });
    this.turn = new Histogram({
      name: 'switchboard_turn_latency_seconds',
      help: 'Per-turn latency: response = caller end of speech to first agent audio sent; stt, endpoint, llm, tts = the stages on the way',
      labelNames: ['stage'], buckets: BUCKETS, registers: [registry],
    });
  }

  callEnded(provider: string, status: string, outcome: string | null): void {
    this.ended.inc({ provider, status, outcome: outcome ?? 'none' });
  }

  turnMeasured(m: TurnMetrics): void {
    const span = (stage: string, from?: number, to?: number) => {
      if (from !== undefined && to !== undefined && to >= from) this.turn.observe({ stage }, (to - from) / 1000);
    };
    if (m.interruptedAtMs !== undefined && m.firstFrameSentMs === undefined) return;
    span('response', m.speechEndMs, m.firstFrameSentMs);
    span('stt', m.speechEndMs, m.sttFinalMs);
    span('endpoint', m.sttFinalMs, m.endpointMs);
    span('llm', m.endpointMs, m.llmFirstTokenMs);
    span('tts', m.llmFirstTokenMs, m.ttsFirstAudioMs);
  }
}
