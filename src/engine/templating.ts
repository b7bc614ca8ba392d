/**
 * Fills `${name}` (Vocode) and `{{name}}` (Voice.AI) placeholders from the call's context. Unknown
 * names stay as written, so a missing value is visible rather than silently empty.
 */
export function fillTemplate(text: string, vars: Record<string, string | number | boolean | null | undefined>): string {
  return text.replace(/\$\{\s*([A-Za-z_][\w.-]*)\s*\}|\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g, (whole, a: string | undefined, b: string | undefined) => {
    const v = vars[(a ?? b)!];
    return v === undefined || v === null ? whole : String(v);
  });
}
