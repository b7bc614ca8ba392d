/**
 * How long to wait after the caller's last words before answering. Vocode's endpointing sensitivity sets
 * the base, conversation_speed scales it; Fluents' dynamic turns wait less after a complete-sounding
 * sentence and longer after a trailing "and…", "so…", "um…".
 */
export interface EndpointingConfig {
  sensitivity: 'auto' | 'relaxed' | 'sensitive';
  conversationSpeed: number;
  dynamic?: { minWaitMs: number; maxSilenceMs: number } | null;
}

const BASE_MS = { sensitive: 0, auto: 200, relaxed: 600 } as const;
const TRAILING = /\b(and|but|so|or|because|um+|uh+|like|the|a|an|to|of|with|my|is|then)\s*[,.]*$/i;
const COMPLETE = /[.?!]\s*$/;

export function endpointDelayMs(text: string, cfg: EndpointingConfig): number {
  const speed = Math.max(0.25, cfg.conversationSpeed);
  if (cfg.dynamic) {
    const { minWaitMs, maxSilenceMs } = cfg.dynamic;
    const t = text.trim();
    const wait = TRAILING.test(t) ? maxSilenceMs : COMPLETE.test(t) ? minWaitMs : (minWaitMs + maxSilenceMs) / 3;
    return wait / speed;
  }
  return BASE_MS[cfg.sensitivity] / speed;
}
