import { describe, expect, it } from 'vitest';
import { closeError, errorText, kindOfStatus, statusError } from '../../src/providers/errors.js';
import { takeSentences } from '../../src/providers/tts/sentenceSession.js';
import { AsyncQueue } from '../../src/providers/asyncQueue.js';
import { PcmAssembler } from '../../src/providers/pcm.js';

describe('vendor failures become typed errors', () => {
  it.each([[401, 'auth'], [403, 'auth'], [402, 'quota'], [429, 'quota'], [408, 'timeout'], [504, 'timeout'], [500, 'unavailable'], [503, 'unavailable'], [400, 'protocol'], [404, 'protocol']])(
    'HTTP %i → %s', (status, kind) => expect(kindOfStatus(status)).toBe(kind));

  it('takes the reason from the vendor body, wherever it keeps it', () => {
    expect(errorText('{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}')).toBe('Incorrect API key');
    expect(errorText('{"detail":"Unauthorized"}')).toBe('Unauthorized');
    expect(errorText('{"err_msg":"Invalid credentials."}')).toBe('Invalid credentials.');
    expect(errorText('plain text')).toBe('plain text');
    expect(statusError('x', 429, '{"message":"slow down"}')).toMatchObject({ kind: 'quota', retryable: true, message: 'x: HTTP 429: slow down' });
  });

  it('reads WebSocket close codes and reasons', () => {
    expect(closeError('v', 1008, 'Invalid API key').kind).toBe('auth');
    expect(closeError('v', 4029, '').kind).toBe('quota');
    expect(closeError('v', 1011, 'internal').kind).toBe('unavailable');
    expect(closeError('v', 1006, '').kind).toBe('network');
    expect(closeError('v', 1006, '').retryable).toBe(true);
    expect(closeError('v', 4000, 'bad config').kind).toBe('protocol');
  });
});

describe('sentence cutting for request-per-sentence TTS', () => {
  it('cuts at sentence ends once there is enough text, keeps the rest', () => {
    expect(takeSentences('Sure. I can do that. And')).toEqual(['Sure. I can do that.', ' And']);
    expect(takeSentences('Hi. ')).toEqual(['', 'Hi. ']);
    expect(takeSentences('It costs $3.50 today')).toEqual(['', 'It costs $3.50 today']);
    expect(takeSentences('Line one here\nline two')).toEqual(['Line one here\n', 'line two']);
  });
});

describe('AsyncQueue', () => {
  it('delivers in order, ends, and fails a waiting reader', async () => {
    const q = new AsyncQueue<number>();
    q.push(1); q.push(2);
    const it = q[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: 1, done: false });
    expect(await it.next()).toEqual({ value: 2, done: false });
    const waiting = it.next();
    q.fail(new Error('boom'));
    await expect(waiting).rejects.toThrow('boom');
  });
});

describe('PcmAssembler', () => {
  it('joins a sample split across chunks', () => {
    const a = new PcmAssembler();
    const bytes = Buffer.from(new Int16Array([1000, -2, 300]).buffer);
    const x = a.push(bytes.subarray(0, 3));
    const y = a.push(bytes.subarray(3));
    expect([...x, ...y]).toEqual([1000, -2, 300]);
  });
});
