// Names for V8 call frames (CPU and heap profiles): which package, source file or Node internal ran.

export interface CallFrame { functionName: string; url: string; lineNumber: number }

/** A readable module name: the npm package, our source file, a Node internal, or V8's pseudo-frames. */
export function moduleOf(cf: CallFrame): string {
  const url = cf.url;
  if (!url) return cf.functionName.startsWith('(') ? cf.functionName : '(native/builtin)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url;
  const m = /\/(src|test|bench)\/(.*)$/.exec(url);
  return m ? `${m[1]}/${m[2]}` : url;
}

/** `function  module:line`. */
export function frameName(cf: CallFrame): string {
  return `${cf.functionName || '(anonymous)'}  ${moduleOf(cf)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
}
