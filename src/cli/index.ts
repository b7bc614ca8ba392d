import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { main as serve } from '../main.js';
import { openStore } from '../server.js';
import { isUuid } from '../domain/common.js';
import { runEmulatorCli } from '../telephony/emulator/cli.js';

const USAGE = `switchboard <command>

  serve                          start the API server (default)
  migrate                        apply database migrations and exit
  keys create [--user ID] [--label TEXT]
                                 create an API key (for a new user unless --user is given)
  keys list                      list API keys (prefix, user, label, state)
  keys revoke <KEY_ID|KEY>       revoke a key
  emulate serve [options]        run the local carrier emulator (Twilio's REST API, webhooks, Media Streams)
  emulate call --emulator URL --to NUMBER [--wav FILE] [--record OUT.wav]
                                 call one of your numbers through a running emulator

With the embedded database (no DATABASE_URL) stop the server before running key commands:
one process at a time may open DATA_DIR.
`;

async function withStore<T>(fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const store = await openStore(loadConfig());
  try { return await fn(store); } finally { await store.close(); }
}

export async function run(argv: string[]): Promise<number> {
  const [cmd = 'serve', sub, ...rest] = argv;
  switch (cmd) {
    case 'serve':
      await serve();
      return -1; // keep running
    case 'migrate':
      await withStore(async () => {});
      process.stdout.write('migrations applied\n');
      return 0;
    case 'keys': {
      if (sub === 'create') {
        const { values } = parseArgs({ args: rest, options: { user: { type: 'string' }, label: { type: 'string' } } });
        const key = await withStore((store) => store.tx(async (db) => {
          let userId = values.user;
          if (userId) {
            if (!(isUuid(userId) && (await store.users.getUser(db, userId)))) throw new Error(`no user ${userId}`);
          } else userId = await store.users.createUser(db, values.label ?? null);
          const k = await store.users.createKey(db, userId, values.label ?? null);
          return { ...k, userId };
        }));
        process.stdout.write(`${key.key}\n`);
        process.stderr.write(`key id ${key.id} for user ${key.userId} (the key is shown only now)\n`);
        return 0;
      }
      if (sub === 'list') {
        const keys = await withStore((store) => store.users.listKeys(store.db));
        for (const k of keys) {
          process.stdout.write(`${k.id}  ${k.prefix}…  user ${k.user_id}  ${k.revoked_at ? `revoked ${k.revoked_at}` : 'active'}  ${k.label ?? ''}\n`);
        }
        return 0;
      }
      if (sub === 'revoke' && rest[0]) {
        const n = await withStore((store) => store.users.revokeKey(store.db, rest[0]));
        process.stdout.write(n ? `revoked ${n} key(s)\n` : 'no active key matched\n');
        return n ? 0 : 1;
      }
      process.stderr.write(USAGE);
      return 2;
    }
    case 'emulate':
      return runEmulatorCli(argv.slice(1));
    case 'help': case '--help': case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command ${cmd}\n\n${USAGE}`);
      return 2;
  }
}
