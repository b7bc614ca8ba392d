import cluster from 'node:cluster';
import { loadConfig, type Config } from './config.js';
import { closeSileroRuntimes } from './engine/vad/index.js';
import { createLogger } from './log.js';
import { ensureBootstrapKey, openStore, startServer } from './server.js';

/**
 * `switchboard serve`: config → store → server; stops cleanly on SIGINT/SIGTERM. With PostgreSQL and
 * SWITCHBOARD_WORKERS > 1 the primary migrates and bootstraps once, then forks stateless HTTP workers.
 */
export async function main(): Promise<void> {
  const config = loadConfig();
  const workers = config.DATABASE_URL ? config.SWITCHBOARD_WORKERS : 1;
  if (config.SWITCHBOARD_WORKERS > 1 && !config.DATABASE_URL) {
    createLogger(config.LOG_LEVEL).warn('SWITCHBOARD_WORKERS needs DATABASE_URL (embedded PGlite is single-process); running one worker');
  }
  if (workers > 1 && cluster.isPrimary) return runPrimary(config, workers);
  const running = await startServer(config, cluster.isWorker ? { print: () => {} } : {});
  if (cluster.isPrimary) process.stdout.write(`Switchboard is up: API ${config.publicUrl}/v1  docs ${config.publicUrl}/docs\n`);
  // The calls end and are recorded first; then the VAD's worker, which must not be cut off mid-run.
  onSignals(async () => { await running.close(); await closeSileroRuntimes(); });
}

async function runPrimary(config: Config, workers: number): Promise<void> {
  const log = createLogger(config.LOG_LEVEL);
  const store = await openStore(config);
  await ensureBootstrapKey(store, config, (s) => process.stdout.write(s + '\n'));
  await store.close();
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (w, code) => {
    if (stopping) return;
    log.error({ pid: w.process.pid, code }, 'worker exited; starting another');
    cluster.fork();
  });
  process.stdout.write(`Switchboard is up with ${workers} workers: API ${config.publicUrl}/v1  docs ${config.publicUrl}/docs\n`);
  onSignals(async () => {
    stopping = true;
    const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
    await Promise.all(alive.map((w) => new Promise((r) => { w!.once('exit', r); w!.kill('SIGTERM'); })));
  });
}

function onSignals(close: () => Promise<void>): void {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}
