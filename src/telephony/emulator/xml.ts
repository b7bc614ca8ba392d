/**
 * A small, strict XML parser for TwiML documents (no XML parser is installed; `xmlbuilder` only builds).
 * TwiML answers are a few hundred bytes, so a straightforward recursive-descent parser is enough.
 *
 * Follows the subset of XML 1.0 (https://www.w3.org/TR/xml/) a TwiML document uses: an optional XML
 * declaration, elements with single- or double-quoted attributes, self-closing tags, text, the five
 * predefined entities (&amp; &lt; &gt; &quot; &apos;) and numeric character references, comments,
 * CDATA sections and processing instructions (skipped). Anything else — a DOCTYPE, an unknown entity, a
 * mismatched or unclosed tag, a duplicate attribute, text outside the root element — is an error, as
 * Twilio answers a malformed document with error 12100 ("Document parse failure").
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}

export type XmlNode = XmlElement | string;

export class XmlParseError extends Error {
  override name = 'XmlParseError';
  constructor(message: string, readonly offset: number) {
    super(`${message} (at offset ${offset})`);
  }
}

const NAME_START = /[A-Za-z_:]/;
const NAME_CHAR = /[A-Za-z0-9_:.-]/;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Parses `text` into its root element. Whitespace-only text nodes are kept; callers trim as they need. */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const n = text.length;
  const fail = (msg: string, at = i): never => { throw new XmlParseError(msg, at); };

  if (text.charCodeAt(0) === 0xfeff) i = 1; // byte-order mark

  const skipSpace = () => { while (i < n && /\s/.test(text[i])) i++; };
  const startsWith = (s: string) => text.startsWith(s, i);

  const readName = (): string => {
    const start = i;
    if (i >= n || !NAME_START.test(text[i])) fail('expected a name');
    i++;
    while (i < n && NAME_CHAR.test(text[i])) i++;
    return text.slice(start, i);
  };

  const decode = (raw: string, at: number): string => raw.replace(/&([^;&\s<]*);|&/g, (m, ref: string | undefined, off: number) => {
    if (ref === undefined) return fail('bare "&" (write &amp;)', at + off);
    if (ref.startsWith('#x') || ref.startsWith('#X')) {
      const cp = /^[0-9a-fA-F]+$/.test(ref.slice(2)) ? parseInt(ref.slice(2), 16) : NaN;
      return codePoint(cp, m, at + off);
    }
    if (ref.startsWith('#')) {
      const cp = /^[0-9]+$/.test(ref.slice(1)) ? parseInt(ref.slice(1), 10) : NaN;
      return codePoint(cp, m, at + off);
    }
    const v = ENTITIES[ref];
    if (v === undefined) return fail(`unknown entity ${m}`, at + off);
    return v;
  });
  const codePoint = (cp: number, m: string, at: number): string => {
    if (!Number.isInteger(cp) || cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return fail(`bad character reference ${m}`, at);
    return String.fromCodePoint(cp);
  };

  /** Skips comments, processing instructions and whitespace between top-level constructs. */
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (startsWith('<!--')) skipComment();
      else if (startsWith('<?')) skipPi();
      else return;
    }
  };
  const skipComment = () => {
    const end = text.indexOf('-->', i + 4);
    if (end < 0) fail('unterminated comment');
    i = end + 3;
  };
  const skipPi = () => {
    const end = text.indexOf('?>', i + 2);
    if (end < 0) fail('unterminated processing instruction');
    i = end + 2;
  };

  const readElement = (): XmlElement => {
    if (text[i] !== '<') fail('expected "<"');
    i++;
    const name = readName();
    const attrs: Record<string, string> = {};
    for (;;) {
      const hadSpace = i < n && /\s/.test(text[i]);
      skipSpace();
      if (i >= n) fail(`unterminated start tag <${name}>`);
      if (startsWith('/>')) { i += 2; return { name, attrs, children: [] }; }
      if (text[i] === '>') { i++; break; }
      if (!hadSpace) fail('expected whitespace before an attribute');
      const attrAt = i;
      const attr = readName();
      skipSpace();
      if (text[i] !== '=') fail(`attribute ${attr} has no value`);
      i++;
      skipSpace();
      const q = text[i];
      if (q !== '"' && q !== "'") fail(`attribute ${attr}: value must be quoted`);
      const end = text.indexOf(q, i + 1);
      if (end < 0) fail(`attribute ${attr}: unterminated value`);
      const raw = text.slice(i + 1, end);
      if (raw.includes('<')) fail(`attribute ${attr}: "<" in a value`, i + 1 + raw.indexOf('<'));
      if (Object.prototype.hasOwnProperty.call(attrs, attr)) fail(`duplicate attribute ${attr}`, attrAt);
      attrs[attr] = decode(raw, i + 1);
      i = end + 1;
    }
    const children: XmlNode[] = [];
    for (;;) {
      if (i >= n) fail(`element <${name}> is not closed`);
      if (startsWith('</')) {
        i += 2;
        const close = readName();
        if (close !== name) fail(`</${close}> closes <${name}>`);
        skipSpace();
        if (text[i] !== '>') fail('expected ">"');
        i++;
        return { name, attrs, children };
      }
      if (startsWith('<!--')) { skipComment(); continue; }
      if (startsWith('<![CDATA[')) {
        const end = text.indexOf(']]>', i + 9);
        if (end < 0) fail('unterminated CDATA section');
        pushText(children, text.slice(i + 9, end));
        i = end + 3;
        continue;
      }
      if (startsWith('<!')) fail('DOCTYPE and declarations are not allowed');
      if (startsWith('<?')) { skipPi(); continue; }
      if (text[i] === '<') { children.push(readElement()); continue; }
      const start = i;
      const next = text.indexOf('<', i);
      i = next < 0 ? n : next;
      pushText(children, decode(text.slice(start, i), start));
    }
  };

  skipMisc();
  if (startsWith('<!')) fail('DOCTYPE and declarations are not allowed');
  if (i >= n) fail('empty document');
  const root = readElement();
  skipMisc();
  if (i < n) fail('content after the root element');
  return root;
}

function pushText(children: XmlNode[], s: string) {
  if (!s) return;
  const last = children[children.length - 1];
  if (typeof last === 'string') children[children.length - 1] = last + s;
  else children.push(s);
}

/** The concatenated text of an element's direct text children. */
export function textOf(el: XmlElement): string {
  return el.children.filter((c): c is string => typeof c === 'string').join('');
}

export function elementsOf(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== 'string');
}
