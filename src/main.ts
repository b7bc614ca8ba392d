import { loadConfig } from './config.js';
import { startServer } from './server.js';

/** `switchboard serve`: config → store → server; stops cleanly on SIGINT/SIGTERM. */
export async function main(): Promise<void> {
  const config = loadConfig();
  const running = await startServer(config);
  process.stdout.write(`Switchboard is up: API ${config.publicUrl}/v1  docs ${config.publicUrl}/docs\n`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    running.log.info({ signal }, 'shutting down');
    await running.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
