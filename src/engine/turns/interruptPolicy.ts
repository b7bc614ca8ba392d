/**
 * Whether what the caller said while the agent spoke is a real interruption. `high`: any words.
 * `low`: backchannels ("uh-huh", "yeah", "right") and very short acknowledgements do not count.
 */
export type InterruptSensitivity = 'low' | 'high';

const BACKCHANNELS = new Set([
  'uh-huh', 'uh huh', 'mhm', 'mm-hmm', 'mm hmm', 'mm', 'hmm', 'um', 'uh', 'yeah', 'yep', 'yes', 'ok', 'okay', 'right',
  'sure', 'got it', 'i see', 'alright', 'all right', 'cool', 'nice', 'great', 'oh', 'ah', 'huh', 'yeah yeah',
  'uh-huh uh-huh', 'mhm mhm', 'okay okay', 'right right', 'sure sure', 'exactly', 'true', 'totally',
]);

export function normalizeUtterance(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{N}\s'-]/gu, ' ').replace(/\s+/g, ' ').trim();
}

export function isBackchannel(text: string): boolean {
  const t = normalizeUtterance(text);
  return t === '' || BACKCHANNELS.has(t);
}

/** True when the caller's words (so far) should stop the agent. */
export function confirmsInterruption(text: string, sensitivity: InterruptSensitivity): boolean {
  const t = normalizeUtterance(text);
  if (t === '') return false;
  if (sensitivity === 'high') return true;
  return !isBackchannel(t);
}
