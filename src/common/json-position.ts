/**
 * Where a JSON text stops being valid, without quoting it: Node's JSON.parse messages quote the text
 * around the error, which in a key or state file can be part of a secret.
 */

/** A string, number, true, false or null, exactly as JSON allows them. */
const STRING_SOURCE = String.raw`"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"`;
const JSON_STRING = new RegExp(STRING_SOURCE, 'y');
const JSON_SCALAR = new RegExp(String.raw`${STRING_SOURCE}|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null`, 'y');
const JSON_SPACE = /[ \t\n\r]*/y;

/**
 * Where `text` stops being JSON: the offset of the first token that cannot stand there (where a bad string
 * or number starts; the end of the text when it ends too early), or -1 when it is valid.
 */
export function jsonErrorOffset(text: string): number {
  const scan = new JsonScan(text);
  for (let expect: JsonExpectation = 'value'; expect !== 'done';) {
    const next = scan[expect]();
    if (next === undefined) return scan.at;
    expect = next;
  }
  return -1;
}

type JsonExpectation = 'value' | 'key' | 'after' | 'done';

/** Steps through JSON one token at a time; iterative, so deep nesting cannot overflow the stack. */
class JsonScan {
  at = 0;
  /** The brackets that close the containers open at `at`, innermost last. */
  private readonly closers: string[] = [];

  constructor(private readonly text: string) {}

  /** Each step reads what it expects and says what comes next, or undefined: wrong at `at`. */
  value(): JsonExpectation | undefined {
    this.skip(JSON_SPACE);
    const char = this.text[this.at];
    if (char !== '{' && char !== '[') return this.skip(JSON_SCALAR) ? 'after' : undefined;
    this.closers.push(char === '{' ? '}' : ']');
    this.at++;
    this.skip(JSON_SPACE);
    if (this.close()) return 'after';
    return char === '{' ? 'key' : 'value';
  }

  key(): JsonExpectation | undefined {
    this.skip(JSON_SPACE);
    if (!this.skip(JSON_STRING)) return undefined;
    this.skip(JSON_SPACE);
    if (this.text[this.at] !== ':') return undefined;
    this.at++;
    return 'value';
  }

  after(): JsonExpectation | undefined {
    this.skip(JSON_SPACE);
    if (this.closers.length === 0) return this.at === this.text.length ? 'done' : undefined;
    if (this.text[this.at] !== ',') return this.close() ? 'after' : undefined;
    this.at++;
    return this.closers.at(-1) === '}' ? 'key' : 'value';
  }

  /** Reads the bracket that closes the innermost container, if it stands at `at`. */
  private close(): boolean {
    if (this.text[this.at] !== this.closers.at(-1)) return false;
    this.closers.pop();
    this.at++;
    return true;
  }

  private skip(pattern: RegExp): boolean {
    pattern.lastIndex = this.at;
    if (!pattern.test(this.text)) return false;
    this.at = pattern.lastIndex;
    return true;
  }
}

/** "line 3, column 15" (both from 1) for an offset into `text`; "the end" past its last character. */
export function describeOffset(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${column}${offset >= text.length ? ' (the end of the file)' : ''}`;
}
