/**
 * Whether a command's real output has the shape a transcript in the docs shows: the same lines in
 * the same order, word for word, except what differs from run to run. In a line of the doc:
 * - a saga id (a UUID, or the 8 hex characters the console prints) stands for any id, but the
 *   same doc id must stand for the same real id throughout a transcript;
 * - a number (with `ms`/`s` after it, a duration) stands for any number or duration;
 * - runs of spaces stand for any run of spaces (columns are padded to their widest cell);
 * - `…` stands for anything within the line, and a line that is only `…` for any lines.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
const SHORT_ID = /^[0-9a-f]{8}(?![0-9a-z])/;
const NUMBER = /^\d+(?:\.\d+)?(?:ms|s|m\d+s)?/;

interface LinePattern {
  readonly regex: RegExp;
  /** The doc's ids in the order of the regex's capture groups. */
  readonly ids: readonly string[];
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function linePattern(line: string): LinePattern {
  let source = '';
  const ids: string[] = [];
  let rest = line.trim();
  while (rest !== '') {
    let m: RegExpExecArray | null;
    const wordStart = source === '' || !/[0-9A-Za-z]$/.test(source.slice(-1)) || source.endsWith('\\s+');
    if ((m = UUID.exec(rest)) !== null) {
      source += '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})';
      ids.push(m[0]);
    } else if (wordStart && (m = SHORT_ID.exec(rest)) !== null) {
      source += '([0-9a-f]{8})';
      ids.push(m[0]);
    } else if ((m = NUMBER.exec(rest)) !== null) {
      source += '\\d+(?:\\.\\d+)?(?:ms|s|m\\d+s)?';
    } else if ((m = /^\s+/.exec(rest)) !== null) {
      source += '\\s+';
    } else if ((m = /^…/.exec(rest)) !== null) {
      source += '.*?';
    } else {
      m = /^./su.exec(rest)!;
      source += escape(m[0]);
    }
    rest = rest.slice(m[0].length);
  }
  return { regex: new RegExp(`^\\s*${source}\\s*$`), ids };
}

/** Maps a doc id to the real id it stood for: a full UUID and its last 8 characters alike. */
export type IdMap = Map<string, string>;

function bind(ids: IdMap, docId: string, realId: string): boolean {
  const pairs: [string, string][] = [[docId, realId]];
  // The console prints a saga id's last 8 characters (its first 8 are a timestamp many share).
  if (docId.length === 36) pairs.push([docId.slice(-8), realId.slice(-8)]);
  for (const [d, r] of pairs) {
    const known = ids.get(d);
    if (known !== undefined && known !== r) return false;
  }
  for (const [d, r] of pairs) ids.set(d, r);
  return true;
}

/**
 * Matches `actual` lines against the doc's `expected` lines; on success, records in `ids` which
 * real id each doc id stood for and returns null, else says where the shapes part.
 */
export function matchOutput(expected: readonly string[], actual: readonly string[], ids: IdMap): string | null {
  const trimEnd = (lines: readonly string[]) => {
    const out = [...lines];
    while (out.length > 0 && out[out.length - 1]!.trim() === '') out.pop();
    return out;
  };
  const exp = trimEnd(expected);
  const act = trimEnd(actual);
  let furthest = { e: 0, a: 0 };
  const go = (e: number, a: number, bound: IdMap): IdMap | null => {
    if (e > furthest.e || (e === furthest.e && a > furthest.a)) furthest = { e, a };
    if (e === exp.length) return a === act.length ? bound : null;
    if (exp[e]!.trim() === '…') {
      for (let skip = a; skip <= act.length; skip++) {
        const r = go(e + 1, skip, bound);
        if (r !== null) return r;
      }
      return null;
    }
    if (a === act.length) return null;
    const { regex, ids: docIds } = linePattern(exp[e]!);
    const m = regex.exec(act[a]!);
    if (m === null) return null;
    const next = new Map(bound);
    for (let i = 0; i < docIds.length; i++) if (!bind(next, docIds[i]!, m[i + 1]!)) return null;
    return go(e + 1, a + 1, next);
  };
  const result = go(0, 0, ids);
  if (result !== null) {
    for (const [k, v] of result) ids.set(k, v);
    return null;
  }
  return [
    `the output differs from the doc at doc line ${furthest.e + 1}:`,
    `  doc:    ${exp[furthest.e] ?? '(end of output)'}`,
    `  actual: ${act[furthest.a] ?? '(end of output)'}`,
    'whole output:',
    ...act.map((l) => `  | ${l}`),
  ].join('\n');
}

/** The command with every doc id replaced by the real id it stood for earlier in the transcript. */
export function substituteIds(command: string, ids: IdMap): string {
  return command.replace(/[0-9a-f]{8}(?:-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?/g, (id) => ids.get(id) ?? id);
}
