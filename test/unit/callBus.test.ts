/**
 * The call bus: a verdict sent on one node reaches the call on the node that runs it, through the database
 * (PGlite's NOTIFY in one process; PostgreSQL's between processes when TEST_DATABASE_URL is set).
 */
import { describe, expect, it } from 'vitest';
import { CallBus, type Verdict } from '../../src/calls/bus.js';
import { LiveCalls } from '../../src/calls/liveCalls.js';
import { createLogger } from '../../src/log.js';
import { openDatabase, type Database } from '../../src/store/db.js';
import { freshPostgres } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const log = createLogger('silent');

async function nodes(db: Database, other: Database) {
  const here = new LiveCalls();
  const there = new LiveCalls();
  const heard: Verdict[] = [];
  let finish!: () => void;
  here.add({ callId: 'call-1', userId: 'u', finished: new Promise((r) => { finish = r; }), end: async () => {}, machineDetected: (v) => heard.push(v) });
  const busHere = new CallBus(db, here, log);
  const busThere = new CallBus(other, there, log);
  await busHere.start();
  await busThere.start();
  return { heard, here, busHere, busThere, finish };
}


describe('call bus', () => {
  it('delivers here when the call runs here, and across nodes when it runs elsewhere (PGlite)', async () => {
    const db = await openDatabase({ dataDir: 'memory://' });
    try {
      const n = await nodes(db, db);
      expect(await n.busHere.machineDetected('call-1', 'human')).toBe('here');
      expect(await n.busThere.machineDetected('call-1', 'machine_end')).toBe('sent');
      await until(() => n.heard.length === 2);
      expect(n.heard).toEqual(['human', 'machine_end']);
      // A call no node runs: the message goes nowhere, harmlessly.
      expect(await n.busThere.machineDetected('call-2', 'machine')).toBe('sent');
      n.finish();
      await n.busHere.close();
      await n.busThere.close();
    } finally {
      await db.close();
    }
  });

  it('a verdict sent while the call\'s stream is being set up reaches the call once it joins its node', async () => {
    const db = await openDatabase({ dataDir: 'memory://' });
    try {
      const n = await nodes(db, db);
      // The record shows the stream connected; the node that took it registers the call a moment later.
      await n.busThere.machineDetected('call-3', 'machine');
      await new Promise((r) => setTimeout(r, 200));
      const heard: Verdict[] = [];
      n.here.add({ callId: 'call-3', userId: 'u', finished: new Promise(() => {}), end: async () => {}, machineDetected: (v) => heard.push(v) });
      await until(() => heard.length === 1);
      expect(heard).toEqual(['machine']);
      n.finish();
      await n.busHere.close();
      await n.busThere.close();
    } finally {
      await db.close();
    }
  });

  it.runIf(!!process.env.TEST_DATABASE_URL)('crosses processes\' connections on PostgreSQL', async () => {
    const fresh = await freshPostgres();
    const a = await openDatabase({ url: fresh.url, dataDir: 'memory://' });
    const b = await openDatabase({ url: fresh.url, dataDir: 'memory://' });
    try {
      const n = await nodes(a, b);
      await n.busThere.machineDetected('call-1', 'machine');
      await until(() => n.heard.length === 1);
      expect(n.heard).toEqual(['machine']);
      await n.busHere.close();
      await n.busThere.close();
    } finally {
      await a.close();
      await b.close();
      await fresh.drop();
    }
  });
});
