// The hint a next edit shows after its place, with no dependency on VS Code (unit-tested on its own).

const HINT = "Tab to apply · Esc to dismiss";
const MAX_PREVIEW = 60; // UTF-16 units of the first line shown

/** "→ new text" for a replacement, "+ new text" for an insertion, then the keys. */
export function hintText(newText: string, replaces: boolean): string {
  return `${replaces ? "→ " : "+ "}${previewOf(newText)}   ${HINT}`;
}

/** The new text's first line (shortened), and how many lines follow it. */
export function previewOf(text: string): string {
  const lines = text.split(/\r\n|\r|\n/); // a CRLF document's edit has "\r\n" breaks
  const first = lines[0].length > MAX_PREVIEW ? cutAt(lines[0], MAX_PREVIEW - 3) + "…" : lines[0];
  return lines.length > 1 ? `${first} … (+${lines.length - 1} lines)` : first || "(delete)";
}

/** text's first n UTF-16 units, one less where the nth is the first half of a surrogate pair (an emoji's). */
function cutAt(text: string, n: number): string {
  const last = text.charCodeAt(n - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? n - 1 : n);
}
