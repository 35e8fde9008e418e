// The lifecycle of one shown inline suggestion, with no dependency on VS Code (unit-tested on its own).
//
// With the proposed API `inlineCompletionsAdditions`, VS Code tells the provider when an item is shown,
// partially accepted and when its lifetime ends, and why. Without it the extension infers the end from what
// the user does: Escape (dismissed), a keystroke that disagrees with the suggestion (typedOver), the cursor
// leaving it (cursorMoved), or a newer suggestion (superseded). Accepting runs the item's command
// (tact.acceptSuggestion) in both cases; a suggestion typed to its end by hand ends ignored (settle()).
import type { RejectReason } from "./protocol";

/** VS Code's InlineCompletionEndOfLifeReasonKind (proposal inlineCompletionsAdditions). */
export const END_ACCEPTED = 0;
export const END_REJECTED = 1;
export const END_IGNORED = 2;

export interface EndOfLifeReason {
  kind: number;
  supersededBy?: unknown;
  userTypingDisagreed?: boolean;
}

/** The reject reason to report for an end-of-lifetime event, or null when nothing is to be reported
 * (accepted: the item's command reports it). */
export function reasonForEndOfLife(reason: EndOfLifeReason, inferred: RejectReason | undefined): RejectReason | null {
  switch (reason.kind) {
    case END_ACCEPTED:
      return null;
    case END_REJECTED:
      return "dismissed";
    default:
      if (reason.supersededBy) {
        return "superseded";
      }
      if (reason.userTypingDisagreed) {
        return "typedOver";
      }
      // VS Code gives no detail: what the extension saw the user do, if anything
      return inferred ?? "ignored";
  }
}

/** One text change, as offsets into the document before the change. */
export interface Change {
  offset: number;
  length: number; // characters replaced
  text: string; // characters inserted
}

export type Verdict =
  | { kind: "unchanged" }
  | { kind: "typedThrough" } // the change typed the suggestion's next characters
  | { kind: "undone" } // an undo took back characters typed through; the rest still fits, VS Code still shows it
  | { kind: "completed" } // the whole suggestion is now in the document (Tab, or typed to the end)
  | { kind: "partiallyAccepted"; acceptedLength: number } // in the suggestion's own text (see SuggestionTracker)
  | { kind: "rejected"; reason: RejectReason };

/** What made a document change, as far as following a suggestion goes. After a partial accept, an undo or a redo,
 * VS Code's next fetch keeps the suggestion on screen while it still fits (InlineCompletionsModel's
 * preserveCurrentCompletion); after typing, the fetch's answer replaces it. */
export type ChangeSource = "typing" | "partialAccept" | "undo" | "redo";

/** PartialAcceptTriggerKind.Suggest: the completion widget's entry was accepted, which accepts none of the suggestion
 * (VS Code's acceptedLength then counts the entry's text, and a fuzzy or replace-mode entry made it look like part of
 * the suggestion). */
export const PARTIAL_ACCEPT_SUGGEST = 3;

/** The length to report for the proposed API's partial accept. VS Code calls the handler twice per accept: with a
 * bare number (deprecated: for a suggest-widget item accepted into the suggestion, only that item's own length),
 * then with PartialAcceptInfo, whose acceptedLength is always how much of the suggestion is accepted (from its range's
 * start, read with "\n" breaks). */
export function partialAcceptLength(info: unknown): number | undefined {
  if (typeof info === "object" && info !== null && (info as { kind?: unknown }).kind === PARTIAL_ACCEPT_SUGGEST) {
    return undefined;
  }
  const length = typeof info === "object" && info !== null ? (info as { acceptedLength?: unknown }).acceptedLength : undefined;
  return typeof length === "number" && Number.isInteger(length) && length >= 0 ? length : undefined;
}

/** text with its line breaks turned into the document's (eol: "\r\n" in a CRLF file), as VS Code inserts it. */
export function withLineBreaks(text: string, eol: string): string {
  return text.replace(/\r\n|\r|\n/g, eol);
}

/** A replacement of document[start, end) by text, in document offsets (VS Code's SingleTextEdit). */
export interface OffsetEdit {
  start: number;
  end: number;
  text: string;
}

/** Whether VS Code shows an inline item while its completion widget has an entry selected: only an item that
 * extends the entry is shown (InlineCompletionsModel._computeAugmentation). Both edits first lose the text they
 * repeat from the document (singleTextRemoveCommonPrefix; the item's only up to the entry's end); then the item
 * must replace from where the entry does, at least as far, and its text must start with the entry's. read(start,
 * end) gives the document's text; the texts are compared with the document's line breaks (eol). */
export function extendsEntry(item: OffsetEdit, entry: OffsetEdit, read: (start: number, end: number) => string, eol = "\n"): boolean {
  const base = withoutRepeatedPrefix(entry, entry.end, read, eol);
  const extended = withoutRepeatedPrefix(item, base.end, read, eol);
  return extended.start === base.start && extended.end >= base.end && extended.text.startsWith(base.text);
}

/** The edit without the text it repeats from the document at its start, reading the document no further than until. */
function withoutRepeatedPrefix(edit: OffsetEdit, until: number, read: (start: number, end: number) => string, eol: string): OffsetEdit {
  const text = withLineBreaks(edit.text, eol);
  const end = Math.min(edit.end, until);
  if (end < edit.start) {
    return { ...edit, text }; // nothing of the document to compare with (VS Code's empty intersection)
  }
  const replaced = read(edit.start, end);
  let common = 0;
  while (common < replaced.length && common < text.length && replaced[common] === text[common]) {
    common++;
  }
  return { start: edit.start + common, end: edit.end, text: text.slice(common) };
}

/** The pairs VS Code auto-closes in Python (autoClosingBrackets, autoClosingQuotes), opener to closer. Typing
 * the opener inserts both, with the cursor between them; typing the closer over the inserted one replaces it
 * (a one-character change) and moves the cursor past it. */
const AUTO_CLOSED: Readonly<Record<string, string>> = { "(": ")", "[": "]", "{": "}", "'": "'", '"': '"' };

/** A suggestion shown at a document offset, followed as the user types. Offsets are UTF-16 code units,
 * like VS Code's and LSP's.
 *
 * Two units: the suggestion's own text (insertText, "\n" line breaks as the server sent it) and the document's
 * (that text with the document's line breaks, "\r\n" in a CRLF file). VS Code's text buffer rewrites every
 * edit's line breaks to the document's, so Tab and partial accepts insert the document form, as does Enter.
 * Offsets and consumed are in the document's unit; acceptedLength is in the suggestion's own text, which is what
 * the server counts and what VS Code reports with the proposed API (its accepted range read with "\n" breaks). */
export class SuggestionTracker {
  /** How much of the suggestion is in the document before the cursor (typed through or partially accepted),
   * in document units. */
  consumed: number;
  /** The largest partially accepted length reported so far, in the suggestion's own text (insertText). */
  acceptedLength = 0;
  /** Why the extension thinks the suggestion ended (used to refine an "ignored" end of lifetime). */
  inferred: RejectReason | undefined;
  shown = false;
  resolved = false;
  /** The whole text is in the document; accept() or settle() decides what it was. */
  completed = false;
  accepted = false;
  /** The last change was a partial accept, an undo or a redo that the suggestion survived: VS Code's next automatic
   * fetch keeps it on screen (see replacedBy). */
  private preserved = false;
  /** insertText with the document's line breaks: what it looks like once in the document. */
  private readonly text: string;
  /** Closers the editor auto-inserted right after the cursor while the suggestion was typed (innermost first). */
  private closers = "";
  /** Characters after the closers that the item's range covers (a completion entry in replace mode over a word's
   * rest): accepting the entry replaces them, which follows the suggestion. */
  private overwrite: number;

  constructor(
    readonly id: string,
    /** The suggestion's text as the server sent it. */
    readonly insertText: string,
    /** Where insertText starts in the document (the item's range start). */
    public anchor: number,
    /** The cursor when the suggestion was made; the text from anchor to it was already there. */
    cursor: number,
    /** The document's line break ("\r\n" for VS Code's EndOfLine.CRLF). */
    private readonly eol: string = "\n",
    /** Where the item's range ends, when past the cursor: the text up to it is the item's to replace. */
    rangeEnd: number = cursor,
  ) {
    this.text = withLineBreaks(insertText, eol);
    this.consumed = Math.max(0, Math.min(cursor - anchor, this.text.length));
    this.overwrite = Math.max(0, rangeEnd - cursor);
  }

  /** The cursor offset at which the suggestion is still being followed. */
  get expectedCursor(): number {
    return this.anchor + this.consumed;
  }

  /** A document change, and what made it (partialAccept: the user just asked to accept the next word or line). */
  onChange(change: Change, source: ChangeSource = "typing"): Verdict {
    const verdict = this.follow(change, source);
    this.preserved = source !== "typing" && !this.resolved;
    return verdict;
  }

  /** Whether ``change`` writes two or more characters of the suggestion in one piece, short of its end, at the cursor
   * (or over the text typed through, which VS Code's item range has grown over): what VS Code's own accept-word and
   * accept-line do (its hover toolbar, its commands) when the extension's next-word command did not run. Typing comes
   * a character at a time, and a pair the editor closes is typing. */
  acceptsPartly(change: Change): boolean {
    if (this.resolved || change.text.length < 2) {
      return false;
    }
    const start = change.offset - this.anchor;
    const atCursor = start === this.consumed && change.length === 0;
    const overTyped = start === 0 && change.length === this.consumed;
    if (!atCursor && !overTyped) {
      return false;
    }
    const typed = this.text.slice(0, start) + change.text;
    if (typed.length - this.consumed < 2 || typed.length >= this.text.length || !this.text.startsWith(typed)) {
      return false;
    }
    return this.autoClosed(change.text) === undefined;
  }

  /** Whether the answer of a fetch made right after the last change takes this suggestion's place on screen (first:
   * its first item). After a partial accept, an undo or a redo, VS Code puts the suggestion it shows before the
   * answer's items while the suggestion still fits (InlineCompletionsSource.fetch, canBeReused), unless the answer
   * holds the same edit (the same text from the same place), which then takes its place; an explicit request
   * (automatic false) replaces it as usual. Asked once per change: a later fetch replaces it. */
  replacedBy(first: SuggestionTracker | undefined, automatic: boolean): boolean {
    const preserved = this.preserved;
    this.preserved = false;
    if (!preserved || !automatic || this.resolved) {
      return true;
    }
    return first !== undefined && first.anchor === this.anchor && first.insertText === this.insertText;
  }

  private follow(change: Change, source: ChangeSource): Verdict {
    if (this.resolved) {
      return { kind: "unchanged" };
    }
    const end = change.offset + change.length;
    if (end < this.anchor) {
      // a change before the suggestion (another cursor, a formatter): it only moves
      this.anchor += change.text.length - change.length;
      return { kind: "unchanged" };
    }
    const cursor = this.expectedCursor;
    if (change.offset > cursor) {
      // after it: the cursor check decides; closers from the change on are no longer known to be there
      this.closers = this.closers.slice(0, change.offset - cursor);
      return { kind: "unchanged" };
    }
    const partialAccept = source === "partialAccept";
    const next = this.followedTo(change, source);
    if (next === undefined) {
      return this.reject("typedOver");
    }
    this.closers = next.closers;
    this.overwrite = next.overwrite;
    if (next.consumed === this.consumed) {
      return { kind: "unchanged" };
    }
    if (next.consumed < this.consumed) {
      this.consumed = next.consumed; // only an undo goes back (followedTo)
      return { kind: "undone" };
    }
    this.consumed = next.consumed;
    if (next.closers.startsWith(this.text.slice(next.consumed))) {
      // the whole text is in the document (the rest of it, if any, is auto-inserted closers after the cursor);
      // what it was waits for accept() (Tab's command) or settle() (typed by hand)
      this.completed = true;
      this.resolved = true;
      return { kind: "completed" };
    }
    const accepted = this.suggestionLength(next.consumed);
    if (partialAccept && accepted > this.acceptedLength) {
      this.acceptedLength = accepted;
      return { kind: "partiallyAccepted", acceptedLength: accepted };
    }
    return { kind: "typedThrough" };
  }

  /** Where the suggestion stands after a change that follows it, or undefined when the change disagrees with
   * it. The document from anchor is the consumed text, the cursor, then the auto-inserted closers. Following:
   * typing at the cursor, or replacing text already consumed (up to the cursor, or over closers after it) with
   * that text and more of the suggestion. VS Code grows the item's range over the characters typed through, and
   * Tab (or the last word of a word-by-word accept) replaces that whole range with the whole text. Typing an
   * opener the suggestion continues with inserts the pair: the opener is typed, the closer waits after the
   * cursor, whether or not the suggestion continues with it there (an argument may come first); a closer typed
   * over it (a one-character replacement) is typed like any character, so one the suggestion does not continue
   * with is typedOver. An undo may also take back characters typed through: the suggestion still fits while the text
   * left before the cursor is its start. */
  private followedTo(
    change: Change,
    source: ChangeSource,
  ): { consumed: number; closers: string; overwrite: number } | undefined {
    const start = change.offset - this.anchor;
    const end = start + change.length;
    if (start < 0 || end < this.consumed || end > this.consumed + this.closers.length + this.overwrite) {
      return undefined;
    }
    const after = this.closers.slice(end - this.consumed); // closers the change leaves after it
    // the text of the item's range it replaced (a completion entry accepted in replace mode)
    const overwrite = this.overwrite - Math.max(0, end - this.consumed - this.closers.length);
    let typed = this.text.slice(0, start) + change.text;
    let closers = after;
    // an insertion at the cursor by typing (a partial accept leaves the cursor after all it inserts)
    const atCursor = source !== "partialAccept" && source !== "undo" && start === this.consumed && end === this.consumed;
    const closer = atCursor ? this.autoClosed(change.text) : undefined;
    if (closer !== undefined) {
      typed = typed.slice(0, typed.length - closer.length);
      closers = closer + after;
    }
    if ((typed.length < this.consumed && source !== "undo") || !this.text.startsWith(typed)) {
      return undefined; // going back over the suggestion (other than by undo), or text it does not have
    }
    return { consumed: typed.length, closers, overwrite };
  }

  /** The closer an insertion at the cursor left after the cursor, if it is the editor auto-closing a pair:
   * opener and closer together, the opener being the suggestion's next character; or the closer alone right
   * after its opener where the suggestion does not continue with it (VS Code inserts it on its own after an
   * opener typed through an input method, such as a dead-key quote). */
  private autoClosed(text: string): string | undefined {
    const next = this.text[this.consumed];
    if (text.length === 2 && AUTO_CLOSED[text[0]] === text[1] && text[0] === next) {
      return text[1];
    }
    if (text.length === 1 && this.consumed > 0 && AUTO_CLOSED[this.text[this.consumed - 1]] === text && text !== next) {
      return text;
    }
    return undefined;
  }

  /** The length in insertText of the suggestion's first docLength characters as they are in the document. */
  private suggestionLength(docLength: number): number {
    let doc = 0;
    let i = 0;
    while (i < this.insertText.length) {
      const ch = this.insertText[i];
      const brk = ch === "\r" && this.insertText[i + 1] === "\n" ? 2 : ch === "\r" || ch === "\n" ? 1 : 0;
      const width = brk ? this.eol.length : 1;
      if (doc + width > docLength) {
        break;
      }
      doc += width;
      i += brk || 1;
    }
    return i;
  }

  /** The whole suggestion got into the document (completed) and no accept command came after it: the user
   * typed it all by hand. Reported as ignored, not accepted: tact.acceptSuggestion means the editor inserted
   * the text (the server counts it all as accepted_length), while here the suggestion saved no typing and the
   * user never acted on it, which is what VS Code's own end of lifetime says for it with the proposed API
   * (Ignored, the typing agreed). A partial accept before it still ranks higher in the server's telemetry. */
  settle(): Verdict {
    if (!this.completed || this.accepted) {
      return { kind: "unchanged" };
    }
    this.completed = false;
    this.inferred = "ignored";
    return { kind: "rejected", reason: "ignored" };
  }

  /** The item's command ran: the editor inserted the whole suggestion. */
  accept(): void {
    this.resolved = true;
    this.accepted = true;
  }

  /** The cursor moved (after any change was applied). Stepping over auto-inserted closers (typing a closer over
   * one, when the editor reports no change for it, or the right arrow) types them: followed when the suggestion
   * continues with them, typedOver when it does not (the document then disagrees with it before the cursor). */
  onCursor(offset: number): Verdict {
    if (this.resolved || offset === this.expectedCursor) {
      return { kind: "unchanged" };
    }
    this.preserved = false; // VS Code fetches for the new position, keeping nothing
    const stepped = offset - this.expectedCursor;
    if (stepped > 0 && stepped <= this.closers.length) {
      if (!this.text.startsWith(this.closers.slice(0, stepped), this.consumed)) {
        return this.reject("typedOver");
      }
      this.consumed += stepped;
      this.closers = this.closers.slice(stepped);
      return { kind: "typedThrough" };
    }
    return this.reject("cursorMoved");
  }

  reject(reason: RejectReason): Verdict {
    if (this.resolved) {
      return { kind: "unchanged" };
    }
    this.resolved = true;
    this.inferred = reason;
    return { kind: "rejected", reason };
  }
}
