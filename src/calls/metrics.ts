/**
 * Call figures for `/metrics`: calls running on this node, how calls end, and each turn's latencies as the
 * engine measured them (the caller's end of speech to the first agent audio sent, and the stages between).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TurnMetrics } from '../engine/index.js';

const BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];

export class CallMetrics {
  private readonly ended: Counter;
  private readonly turn: Histogram;

  constructor(registry: Registry, activeCalls: () => number) {
    new Gauge({
      name: 'switchboard_active_calls', help: 'Calls whose media stream this process is running', registers: [registry],
      collect() { this.set(activeCalls()); },
    });
    this.ended = new Counter({
      name: 'switchboard_calls_ended_total', help: 'Calls ended on this process, by provider, status and stage outcome',
      labelNames: ['provider', 'status', 'outcome'], registers: [registry],
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
