import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('defaults: PORT 3000, HOST 0.0.0.0, DATA_DIR ./data, LOG_LEVEL info, no database URL', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ PORT: 3000, HOST: '0.0.0.0', DATA_DIR: './data', LOG_LEVEL: 'info', API_KEY_CACHE_SECONDS: 10, SWITCHBOARD_WORKERS: 1 });
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.publicUrl).toBe('http://localhost:3000');
  });

  it('reads the environment, coercing numbers', () => {
    const c = loadConfig({ PORT: '8080', DATA_DIR: '/var/lib/switchboard', LOG_LEVEL: 'debug', DATABASE_URL: 'postgres://u@db/x', API_KEY_CACHE_SECONDS: '0' });
    expect(c).toMatchObject({ PORT: 8080, DATA_DIR: '/var/lib/switchboard', LOG_LEVEL: 'debug', DATABASE_URL: 'postgres://u@db/x', API_KEY_CACHE_SECONDS: 0 });
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', LOG_LEVEL: '', PUBLIC_URL: '' })).toMatchObject({ PORT: 3000, LOG_LEVEL: 'info', publicUrl: 'http://localhost:3000' });
  });

  it.each(['abc', '70000', '-1', '80.5'])('PORT=%j is an error naming PORT', (port) => {
    expect(() => loadConfig({ PORT: port })).toThrow(/Invalid configuration[\s\S]*PORT/);
  });

  it('reports every bad variable at once, by name', () => {
    let message = '';
    try { loadConfig({ PORT: 'x', LOG_LEVEL: 'loud', SWITCHBOARD_BOOTSTRAP_API_KEY: 'short', PUBLIC_URL: 'not a url' }); } catch (e) { message = (e as Error).message; }
    for (const name of ['PORT', 'LOG_LEVEL', 'SWITCHBOARD_BOOTSTRAP_API_KEY', 'PUBLIC_URL']) expect(message).toContain(name);
    expect(message).toContain('at least 16 characters');
  });

  it('SWITCHBOARD_PRELOAD_SDKS: a comma list of SDK-backed vendors, or all; an unknown one is named', () => {
    expect(loadConfig({}).SWITCHBOARD_PRELOAD_SDKS).toEqual([]);
    expect(loadConfig({ SWITCHBOARD_PRELOAD_SDKS: ' google_speech,anthropic ' }).SWITCHBOARD_PRELOAD_SDKS).toEqual(['google_speech', 'anthropic']);
    expect(loadConfig({ SWITCHBOARD_PRELOAD_SDKS: 'all' }).SWITCHBOARD_PRELOAD_SDKS).toEqual(['google_speech', 'azure_speech', 'anthropic', 'google']);
    expect(() => loadConfig({ SWITCHBOARD_PRELOAD_SDKS: 'google_speech,deepgram' })).toThrow(/SWITCHBOARD_PRELOAD_SDKS.*unknown SDK "deepgram"/);
  });

  it('SWITCHBOARD_MAX_CALLS: a whole number of calls, 0 (the default) for no limit', () => {
    expect(loadConfig({}).SWITCHBOARD_MAX_CALLS).toBe(0);
    expect(loadConfig({ SWITCHBOARD_MAX_CALLS: '40' }).SWITCHBOARD_MAX_CALLS).toBe(40);
    expect(() => loadConfig({ SWITCHBOARD_MAX_CALLS: '-1' })).toThrow(/SWITCHBOARD_MAX_CALLS/);
    expect(() => loadConfig({ SWITCHBOARD_MAX_CALLS: 'many' })).toThrow(/SWITCHBOARD_MAX_CALLS/);
  });

  it('PUBLIC_URL wins, without trailing slashes', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://voice.example.com/' }).publicUrl).toBe('https://voice.example.com');
    expect(loadConfig({ PUBLIC_URL: 'https://voice.example.com/sb//' }).publicUrl).toBe('https://voice.example.com/sb');
    expect(loadConfig({ PUBLIC_URL: 'https://voice.example.com', PORT: '9000' }).publicUrl).toBe('https://voice.example.com');
  });

  it('derives publicUrl from HOST and PORT', () => {
    expect(loadConfig({ PORT: '8080' }).publicUrl).toBe('http://localhost:8080');
    expect(loadConfig({ HOST: '::', PORT: '8080' }).publicUrl).toBe('http://localhost:8080');
    expect(loadConfig({ HOST: '127.0.0.1', PORT: '8080' }).publicUrl).toBe('http://127.0.0.1:8080');
    expect(loadConfig({ HOST: 'voice.internal' }).publicUrl).toBe('http://voice.internal:3000');
  });

  it('a derived publicUrl is a valid URL for an IPv6 HOST', () => {
    const { publicUrl } = loadConfig({ HOST: '::1', PORT: '8080' });
    expect(() => new URL(publicUrl), publicUrl).not.toThrow();
    expect(publicUrl).toBe('http://[::1]:8080');
  });
});
