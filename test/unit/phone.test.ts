import { describe, expect, it } from 'vitest';
import { normalizePhone, PhoneNumberString } from '../../src/domain/common.js';

describe('normalizePhone', () => {
  it.each([
    ['+14155550100', '+14155550100'],
    ['14155550100', '+14155550100'],
    ['+1 415 555 0100', '+14155550100'],
    ['1-415-555-0100', '+14155550100'],
    ['+1 (415) 555-0100', '+14155550100'],
    ['1.415.555.0100', '+14155550100'],
    ['  +442079460958  ', '+442079460958'],
    ['+12345678', '+12345678'], // 8 digits: shortest accepted
    ['+123456789012345', '+123456789012345'], // 15 digits: longest E.164
  ])('accepts %j as %j', (input, out) => {
    expect(normalizePhone(input)).toBe(out);
  });

  it.each([
    ['letters', '1-800-FLOWERS'],
    ['letters mixed in', '+1415555010a'],
    ['an extension', '+14155550100 ext 5'],
    ['too short (7 digits)', '+1234567'],
    ['too long (16 digits)', '+1234567890123456'],
    ['a leading 0', '04155550100'],
    ['a leading 0 after +', '+04155550100'],
    ['an international 00 prefix', '0044 20 7946 0958'],
    ['two plus signs', '++14155550100'],
    ['a plus in the middle', '1415+5550100'],
    ['empty', ''],
    ['only punctuation', '(--) .'],
    ['only a plus', '+'],
  ])('rejects %s', (_what, input) => {
    expect(normalizePhone(input)).toBeNull();
  });

  it('PhoneNumberString normalizes, or fails with a message that shows the expected form', () => {
    expect(PhoneNumberString.parse('1 (415) 555-0100')).toBe('+14155550100');
    const r = PhoneNumberString.safeParse('call me');
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].message).toContain('E.164');
  });
});
