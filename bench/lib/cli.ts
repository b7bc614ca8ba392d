// Command-line options of the benches: `--name value`.

/** Reads `--name value` from `args`; the default when the option is absent or has no value. */
export function argReader(args: readonly string[]): (name: string, dflt: string) => string {
  return (name, dflt) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
  };
}
