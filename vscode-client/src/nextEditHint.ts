// The hint a next edit shows after its place, with no dependency on VS Code (unit-tested on its own).
import { codeBlock } from "./markdown";

const HINT = "Tab to apply · Esc to dismiss";
const MAX_PREVIEW = 60; // UTF-16 units of the first line shown
const BREAK = /\r\n|\r|\n/; // a CRLF document's edit has "\r\n" breaks

/** "→ new text" for a replacement, "+ new text" for an insertion, then the keys. */
export function hintText(newText: string, replaces: boolean): string {
  return `${replaces ? "→ " : "+ "}${previewOf(newText)}   ${HINT}`;
}

/** The hint for an edit in a cell out of view, shown at the cursor instead: what it does, which cell, the keys (Tab
 * goes to the cell and applies it there). */
export function outOfViewHintText(newText: string, replaces: boolean, cell: number | undefined): string {
  const where = cell === undefined ? "in another cell" : `in cell ${cell}`;
  return `${replaces ? "→ " : "+ "}${previewOf(newText)} ${where}   Tab to apply there · Esc to dismiss`;
}

/** The hint for an edit in the same document but off screen, shown at the cursor too: what it does, on which line
 * (1-based), the keys (Tab goes there and applies it). Without it, Tab applied an edit the user never saw. */
export function offScreenHintText(newText: string, replaces: boolean, line: number): string {
  return `${replaces ? "→ " : "+ "}${previewOf(newText)} at line ${line}   Tab to apply there · Esc to dismiss`;
}

/** The new text's first line (shortened), and how many lines follow it. An inserted line comes with its line
 * break at one end ("x = 1\n", "\nx = 1", or "x = 1\n    " with the indentation of the line after it): blank
 * lines at the ends are no lines of their own, or the hint would show nothing ("\nx = 1") or a line too many. */
export function previewOf(text: string): string {
  if (text === "") {
    return "(delete)";
  }
  const lines = text.split(BREAK);
  let first = 0;
  let last = lines.length - 1;
  while (first < last && lines[first].trim() === "") {
    first++;
  }
  while (last > first && lines[last].trim() === "") {
    last--;
  }
  if (lines[first].trim() === "" && lines.length > 1) {
    return lines.length > 2 ? `(${lines.length - 1} blank lines)` : "(blank line)";
  }
  const line = lines[first].length > MAX_PREVIEW ? cutAt(lines[first], MAX_PREVIEW - 3) + "…" : lines[first];
  return last > first ? `${line} … (+${last - first} lines)` : line;
}

/** The hover over the text a next edit replaces, as markdown: the new text in a code block (an inline code span
 * showed a deletion as "``", ran the lines of a multi-line edit together and broke on the text's own backticks). */
export function hoverMarkdown(newText: string): string {
  if (newText === "") {
    return "Tact: delete";
  }
  return `Tact: replace with\n\n${codeBlock(newText.split(BREAK).join("\n"), "python")}`;
}

/** text's first n UTF-16 units, one less where the nth is the first half of a surrogate pair (an emoji's). */
function cutAt(text: string, n: number): string {
  const last = text.charCodeAt(n - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? n - 1 : n);
}
