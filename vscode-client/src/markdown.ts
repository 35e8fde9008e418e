// Text from elsewhere (the server's reasons, a suggestion's code) in markdown, with no dependency on VS Code.

/** Characters that can start markdown outside a code span (with VS Code's theme icons, `$(name)`, and HTML). */
const SPECIAL = /[\\`*_{}[\]()#+\-.!~<>$&=]/g;
const BREAKS = /\r\n|\r|\n/g;

/** Text as one line of markdown that shows it as written, except its code spans: a reason that names a command
 * in backticks (`tact train lm`) shows it as code, and what is outside them (a `__pycache__/`, a `*`, a `<`) is
 * escaped. A backtick with no closing run of the same length is text, as CommonMark reads it; line breaks are
 * spaces (a blank line would end the paragraph, or the table row, it stands in). */
export function markdownText(text: string): string {
  const line = text.replace(BREAKS, " ");
  let out = "";
  let at = 0;
  for (const run of line.matchAll(/`+/g)) {
    const start = run.index;
    if (start < at) {
      continue; // a closing run already taken
    }
    const close = closingRun(line, run[0].length, start + run[0].length);
    if (close === undefined) {
      continue; // text: escaped with what surrounds it
    }
    out += escapeSpecials(line.slice(at, start)) + line.slice(start, close);
    at = close;
  }
  return out + escapeSpecials(line.slice(at));
}

/** markdownText for a table cell: its pipes escaped too (GFM reads an escaped pipe, in a code span as well, as
 * part of the cell). */
export function markdownCell(text: string): string {
  return markdownText(text).replace(/\|/g, "\\|");
}

/** Text as a fenced code block: the fence is longer than any run of backticks in the text, so none ends it early. */
export function codeBlock(text: string, language = ""): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return `${fence}${language}\n${text}\n${fence}`;
}

/** Where the run of exactly n backticks that closes a code span opened before from ends (exclusive), if any. */
function closingRun(line: string, n: number, from: number): number | undefined {
  const runs = /`+/g;
  runs.lastIndex = from;
  for (let m = runs.exec(line); m; m = runs.exec(line)) {
    if (m[0].length === n) {
      return m.index + n;
    }
  }
  return undefined;
}

function escapeSpecials(text: string): string {
  return text.replace(SPECIAL, "\\$&");
}
