/**
 * In-band DTMF: the dual tones of ITU-T Q.23 as PCM16, for carriers whose media stream cannot send
 * digits out of band (Twilio's bidirectional streams have no outbound DTMF message). Tone and gap
 * lengths follow Q.24's minimums with margin (≥ 40 ms tone, ≥ 40 ms pause): IVRs detect 100 ms tones
 * with 100 ms gaps reliably, also through μ-law.
 */
const ROWS = [697, 770, 852, 941];
const COLS = [1209, 1336, 1477, 1633];
const KEYS = ['123A', '456B', '789C', '*0#D'];

export const DTMF_TONE_MS = 100;
export const DTMF_GAP_MS = 100;
/** Each of the two tones at -7 dBFS: loud enough for detectors, no clipping when summed. */
const AMPLITUDE = 0.45 * 32767 * 0.5;

export function isDtmfDigits(digits: string): boolean {
  return /^[0-9A-D*#wW]+$/.test(digits);
}

function frequencies(digit: string): [number, number] | null {
  const d = digit.toUpperCase();
  for (let r = 0; r < KEYS.length; r++) {
    const c = KEYS[r].indexOf(d);
    if (c >= 0) return [ROWS[r], COLS[c]];
  }
  return null;
}

/**
 * The samples for `digits` at `sampleRate`: tone, gap, tone, gap…; `w` is a half-second wait, as in
 * Twilio's `sendDigits`.
 */
export function dtmfSamples(digits: string, sampleRate: number): Int16Array {
  const tone = Math.round((sampleRate * DTMF_TONE_MS) / 1000);
  const gap = Math.round((sampleRate * DTMF_GAP_MS) / 1000);
  const wait = Math.round(sampleRate / 2);
  let total = 0;
  for (const d of digits) total += d === 'w' || d === 'W' ? wait : tone + gap;
  const out = new Int16Array(total);
  let at = 0;
  for (const d of digits) {
    if (d === 'w' || d === 'W') { at += wait; continue; }
    const f = frequencies(d);
    if (!f) throw new Error(`"${d}" is not a DTMF digit`);
    const [lo, hi] = f;
    for (let i = 0; i < tone; i++) {
      const t = i / sampleRate;
      // A 5 ms ramp at each end keeps the tone from clicking.
      const ramp = Math.min(1, i / (sampleRate * 0.005), (tone - i) / (sampleRate * 0.005));
      out[at + i] = Math.round(AMPLITUDE * ramp * (Math.sin(2 * Math.PI * lo * t) + Math.sin(2 * Math.PI * hi * t)));
    }
    at += tone + gap;
  }
  return out;
}

/** Goertzel power of `freq` in `samples`: used by tests (and the emulator) to read tones back. */
export function tonePower(samples: Int16Array, freq: number, sampleRate: number): number {
  const k = 2 * Math.cos((2 * Math.PI * freq) / sampleRate);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i] / 32768 + k * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  // Normalised by N²: a tone of amplitude A (full scale 1) reads ≈ A²/4 whatever the block length.
  return (s1 * s1 + s2 * s2 - k * s1 * s2) / (samples.length * samples.length);
}

/** The digit a block of tone samples carries, if any: the strongest row and column, each clearly present. */
export function detectDtmfDigit(samples: Int16Array, sampleRate: number): string | null {
  const row = ROWS.map((f) => tonePower(samples, f, sampleRate));
  const col = COLS.map((f) => tonePower(samples, f, sampleRate));
  const r = row.indexOf(Math.max(...row));
  const c = col.indexOf(Math.max(...col));
  const floor = 1e-3; // a tone of amplitude ≈ 0.06 (-24 dBFS); ours are ≈ 0.22
  if (row[r] < floor || col[c] < floor) return null;
  // The winner must dominate its group, or it is speech or noise, not a key.
  if (row.some((p, i) => i !== r && p > row[r] / 4) || col.some((p, i) => i !== c && p > col[c] / 4)) return null;
  return KEYS[r][c];
}
