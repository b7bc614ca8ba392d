import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Embedded PGlite allows one process per data directory: a second writer (say `keys create` while the
 * server runs) would be lost. The lock names the holder's pid; a lock whose process is gone is stale.
 */
export function lockDataDir(dir: string): () => void {
  const file = join(dir, 'switchboard.lock');
  let holder = NaN;
  try { holder = Number(readFileSync(file, 'utf8').trim()); } catch { /* no lock */ }
  if (Number.isInteger(holder) && holder !== process.pid && alive(holder)) {
    throw new Error(`${dir} is in use by another Switchboard process (pid ${holder}); stop it first — the embedded database allows one process at a time`);
  }
  writeFileSync(file, String(process.pid));
  return () => {
    try {
      if (Number(readFileSync(file, 'utf8').trim()) === process.pid) rmSync(file);
    } catch { /* already gone */ }
  };
}
