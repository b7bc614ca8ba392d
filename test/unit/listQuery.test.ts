import { sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/domain/errors.js';
import { and } from 'drizzle-orm';
import { parseFilters, type FieldMap } from '../../src/store/listQuery.js';

const FIELDS: FieldMap = {
  status: { expr: sql.raw('"status"'), kind: 'text' },
  agent: { expr: sql.raw('"agent_id"'), kind: 'uuid' },
  is_outgoing: { expr: sql.raw('"is_outgoing"'), kind: 'bool' },
  start_time: { expr: sql.raw('"start_time"'), kind: 'time' },
  name: { expr: sql.raw(`("data" -> 'name')`), kind: 'json' },
};

const dialect = new PgDialect();
function render(filters: unknown) {
  const { sql: text, params } = dialect.sqlToQuery(and(...parseFilters(typeof filters === 'string' ? filters : JSON.stringify(filters), FIELDS))!);
  return { sql: text, params };
}

/** The single 422 issue parseFilters raises for these filters. */
function rejection(filters: unknown): { loc: (string | number)[]; msg: string } {
  try {
    parseFilters(typeof filters === 'string' ? filters : JSON.stringify(filters), FIELDS);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    expect((e as ValidationError).status).toBe(422);
    const issues = (e as ValidationError).issues;
    expect(issues).toHaveLength(1);
    return issues[0];
  }
  throw new Error(`filters ${JSON.stringify(filters)} were accepted`);
}

describe('parseFilters: errors', () => {
  it.each(['{not json', '[1,2]', '"ended"', '42', 'null'])('%s is not a JSON object', (f) => {
    expect(rejection(f)).toMatchObject({ loc: ['query', 'filters'], msg: expect.stringContaining('must be a JSON object') });
  });

  it('an unknown field names it and lists the filterable fields', () => {
    const i = rejection({ colour: 'red' });
    expect(i.loc).toEqual(['query', 'filters', 'colour']);
    expect(i.msg).toContain('unknown field');
    for (const f of Object.keys(FIELDS)) expect(i.msg).toContain(f);
  });

  it('an unknown operator names the operators', () => {
    const i = rejection({ status: { like: 'end%' } });
    expect(i.loc).toEqual(['query', 'filters', 'status', 'like']);
    expect(i.msg).toMatch(/unknown operator; use one of eq, ne, gt, gte, lt, lte, in, nin, contains, is_null/);
  });

  it('an empty operator object', () => {
    expect(rejection({ status: {} })).toMatchObject({ loc: ['query', 'filters', 'status'], msg: 'operator object is empty' });
  });

  it.each([
    ['a UUID field with a non-UUID', { agent: 'abc' }, ['agent'], 'must be a valid UUID'],
    ['a bool field with a string', { is_outgoing: 'yes' }, ['is_outgoing'], 'must be true or false'],
    ['a text field with a number', { status: 5 }, ['status'], 'must be a string'],
    ['a time field with garbage', { start_time: { gte: 'yesterday-ish' } }, ['start_time'], 'must be an ISO 8601 time or epoch seconds'],
    ['a time beyond year 9999 (epoch seconds)', { start_time: { lt: 1e12 } }, ['start_time'], 'must be an ISO 8601 time or epoch seconds'],
    ['is_null with a non-boolean', { status: { is_null: 'yes' } }, ['status', 'is_null'], 'must be true or false'],
    ['contains with a non-string', { status: { contains: 5 } }, ['status', 'contains'], 'must be a string'],
    ['in with an empty array', { status: { in: [] } }, ['status', 'in'], 'must be a non-empty array of at most 100 values'],
    ['in with a non-array', { status: { in: 'ended' } }, ['status', 'in'], 'must be a non-empty array of at most 100 values'],
    ['in with more than 100 values', { status: Array.from({ length: 101 }, (_, i) => `s${i}`) }, ['status', 'in'], 'must be a non-empty array of at most 100 values'],
    ['gt with null', { start_time: { gt: null } }, ['start_time', 'gt'], 'cannot compare with null'],
    ['a bad value inside in', { agent: { in: ['00000000-0000-4000-8000-000000000000', 'nope'] } }, ['agent'], 'must be a valid UUID'],
  ])('%s', (_what, filters, loc, msg) => {
    expect(rejection(filters)).toEqual({ loc: ['query', 'filters', ...loc], msg: expect.stringContaining(msg), type: 'value_error' });
  });
});

describe('parseFilters: accepted forms', () => {
  it('nothing to filter: no conditions', () => {
    expect(parseFilters(undefined, FIELDS)).toEqual([]);
    expect(parseFilters(null, FIELDS)).toEqual([]);
    expect(parseFilters('  ', FIELDS)).toEqual([]);
    expect(parseFilters('{}', FIELDS)).toEqual([]);
  });

  it('a bare value is equality, an array is "any of", with values bound as parameters', () => {
    expect(render({ status: 'ended' })).toEqual({ sql: '"status" = $1', params: ['ended'] });
    expect(render({ status: ['ended', 'error'] })).toEqual({ sql: '"status" IN ($1, $2)', params: ['ended', 'error'] });
    expect(render({ status: "x'; drop table calls; --" }).params).toEqual(["x'; drop table calls; --"]);
  });

  it('null equality becomes IS NULL', () => {
    expect(render({ status: null }).sql).toBe('("status" IS NULL)');
    expect(render({ status: { ne: null } }).sql).toBe('("status" IS NOT NULL)');
  });

  it('times accept ISO strings and epoch seconds', () => {
    expect(render({ start_time: { gte: 0 } }).params).toEqual(['1970-01-01T00:00:00.000Z']);
    expect(render({ start_time: { lt: '2024-05-01T12:00:00Z' } }).params).toEqual(['2024-05-01T12:00:00.000Z']);
  });

  it('contains escapes LIKE wildcards', () => {
    expect(render({ status: { contains: '50%_off\\' } }).params).toEqual(['%50\\%\\_off\\\\%']);
  });

  it('several operators on one field combine', () => {
    expect(parseFilters(JSON.stringify({ start_time: { gte: 0, lt: 100 }, status: 'ended' }), FIELDS)).toHaveLength(3);
  });
});
