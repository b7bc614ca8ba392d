import { describe, expect, it } from 'vitest';
import { AgentParams } from '../../src/domain/agents.js';
import { z } from '../../src/domain/common.js';
import { ValidationError } from '../../src/domain/errors.js';
import { parseOrThrow, toFieldIssues } from '../../src/domain/validation.js';
import { VoiceParams } from '../../src/domain/voices.js';

/** The `detail` entries a client gets for an input. */
function issues(schema: z.ZodType, input: unknown, prefix: (string | number)[] = ['body']) {
  const r = schema.safeParse(input);
  if (r.success) throw new Error(`expected ${JSON.stringify(input)} to fail`);
  return toFieldIssues(r.error, prefix, input);
}

const VOICE = { type: 'voice_azure', voice_name: 'en-US-AriaNeural' };
const VOICE_TYPES = ['voice_azure', 'voice_rime', 'voice_eleven_labs', 'voice_play_ht', 'voice_vocode', 'voice_cartesia', 'voice_deepgram', 'voice_openai'];

describe('toFieldIssues', () => {
  it('a missing field: "Field required" at its loc, one entry per field', () => {
    expect(issues(AgentParams, {})).toEqual([
      { loc: ['body', 'prompt'], msg: 'Field required', type: 'missing' },
      { loc: ['body', 'voice'], msg: 'Field required', type: 'missing' },
    ]);
  });

  it('a missing nested field: full loc with array indexes as numbers', () => {
    const s = z.object({ items: z.array(z.object({ name: z.string() })) });
    expect(issues(s, { items: [{ name: 'a' }, {}] })).toEqual([{ loc: ['body', 'items', 1, 'name'], msg: 'Field required', type: 'missing' }]);
  });

  it('an enum: lists the allowed values and the bad one', () => {
    const [i, ...rest] = issues(AgentParams, { prompt: { content: 'x' }, voice: VOICE, language: 'klingon' });
    expect(rest).toEqual([]);
    expect(i.loc).toEqual(['body', 'language']);
    expect(i.type).toBe('enum');
    for (const v of ['en', 'es', 'de', 'fr', 'ja']) expect(i.msg).toContain(`"${v}"`);
    expect(i.msg).toContain('"klingon"');
  });

  it('a wrong type: names the expected and the given type', () => {
    expect(issues(z.object({ n: z.number() }), { n: 'five' })).toEqual([{ loc: ['body', 'n'], msg: 'must be a number, got a string', type: 'number_type' }]);
    expect(issues(z.object({ o: z.object({}) }), { o: [1] })[0].msg).toBe('must be an object, got an array');
    expect(issues(z.object({ s: z.string() }), { s: null })[0].msg).toBe('must be a string, got null');
  });

  it('uuid | object given an object: reports the object branch\'s errors, not "must be a UUID"', () => {
    expect(issues(AgentParams, { prompt: { content: 42 }, voice: VOICE })).toEqual([
      { loc: ['body', 'prompt', 'content'], msg: 'must be a string, got a number', type: 'string_type' },
    ]);
    expect(issues(AgentParams, { prompt: { content: 'x' }, voice: { type: 'voice_azure' } })).toEqual([
      { loc: ['body', 'voice', 'voice_name'], msg: 'Field required', type: 'missing' },
    ]);
  });

  it('uuid | object given a string: reports the UUID format', () => {
    expect(issues(AgentParams, { prompt: 'not-a-uuid', voice: VOICE })).toEqual([
      { loc: ['body', 'prompt'], msg: 'must be a valid UUID', type: 'uuid_parsing' },
    ]);
  });

  it('an unknown discriminator: names the bad value and every expected one', () => {
    const [i, ...rest] = issues(VoiceParams, { type: 'voice_nope' });
    expect(rest).toEqual([]);
    expect(i.loc).toEqual(['body', 'type']);
    expect(i.type).toBe('union_tag_invalid');
    expect(i.msg).toContain('"voice_nope"');
    for (const t of VOICE_TYPES) expect(i.msg).toContain(t);
  });

  it('an unknown discriminator nested in uuid | object: same message at the nested loc', () => {
    const [i] = issues(AgentParams, { prompt: { content: 'x' }, voice: { type: 'voice_nope' } });
    expect(i.loc).toEqual(['body', 'voice', 'type']);
    expect(i.msg).toMatch(/unknown value "voice_nope"; expected one of voice_azure, .*voice_openai/);
  });

  it('a missing discriminator: "Field required" with the expected values', () => {
    const [i] = issues(VoiceParams, { voice_name: 'x' });
    expect(i).toMatchObject({ loc: ['body', 'type'], type: 'missing' });
    expect(i.msg).toMatch(/^Field required; expected one of voice_azure/);
  });

  it('unknown fields of a strict object are listed one by one', () => {
    expect(issues(z.object({ a: z.string() }).strict(), { a: 'x', b: 1, c: 2 })).toEqual([
      { loc: ['body', 'b'], msg: 'unknown field', type: 'extra_forbidden' },
      { loc: ['body', 'c'], msg: 'unknown field', type: 'extra_forbidden' },
    ]);
  });

  it('size limits and formats read as "must be ..."', () => {
    expect(issues(z.object({ s: z.string().max(3) }), { s: 'abcdef' })[0]).toMatchObject({ loc: ['body', 's'], type: 'too_long' });
    expect(issues(z.object({ s: z.string().max(3) }), { s: 'abcdef' })[0].msg).toMatch(/^must be .*3/);
    expect(issues(z.object({ n: z.number().min(1) }), { n: 0 })[0]).toMatchObject({ type: 'too_short' });
    expect(issues(z.object({ e: z.email() }), { e: 'nope' })[0]).toEqual({ loc: ['body', 'e'], msg: 'must be a valid email', type: 'email_parsing' });
  });

  it('prefixes every loc with the given prefix (query, body)', () => {
    expect(issues(z.object({ id: z.uuid() }), { id: 'x' }, ['query'])[0].loc).toEqual(['query', 'id']);
  });
});

describe('parseOrThrow', () => {
  it('returns the parsed value, or throws a 422 ValidationError whose message names each field', () => {
    expect(parseOrThrow(z.object({ n: z.coerce.number() }), { n: '5' }, ['query'])).toEqual({ n: 5 });
    let err: unknown;
    try { parseOrThrow(AgentParams, {}, ['body']); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).status).toBe(422);
    expect((err as ValidationError).message).toBe('body.prompt: Field required; body.voice: Field required');
  });
});
