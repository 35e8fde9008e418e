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
  | { kind: "completed" } // the whole suggestion is now in the document (Tab, or typed to the end)
  | { kind: "partiallyAccepted"; acceptedLength: number }
  | { kind: "rejected"; reason: RejectReason };

/** A suggestion shown at a document offset, followed as the user types. Offsets are UTF-16 code units,
 * like VS Code's and LSP's. */
export class SuggestionTracker {
  /** How much of insertText is in the document already (typed through or partially accepted). */
  consumed: number;
  /** The largest partially accepted length reported so far. */
  acceptedLength = 0;
  /** Why the extension thinks the suggestion ended (used to refine an "ignored" end of lifetime). */
  inferred: RejectReason | undefined;
  shown = false;
  resolved = false;
  /** The whole text is in the document; accept() or settle() decides what it was. */
  completed = false;
  accepted = false;

  constructor(
    readonly id: string,
    readonly insertText: string,
    /** Where insertText starts in the document (the item's range start). */
    public anchor: number,
    /** The cursor when the suggestion was made; insertText[0 .. cursor - anchor] was already there. */
    cursor: number,
  ) {
    this.consumed = Math.max(0, Math.min(cursor - anchor, insertText.length));
  }

  /** The cursor offset at which the suggestion is still being followed. */
  get expectedCursor(): number {
    return this.anchor + this.consumed;
  }

  /** A document change. partialAccept: the user just asked to accept the next word or line. */
  onChange(change: Change, partialAccept = false): Verdict {
    if (this.resolved) {
      return { kind: "unchanged" };
    }
    const end = change.offset + change.length;
    if (end < this.anchor) {
      // a change before the suggestion (another cursor, a formatter): it only moves
      this.anchor += change.text.length - change.length;
      return { kind: "unchanged" };
    }
    if (change.offset > this.expectedCursor) {
      return { kind: "unchanged" }; // after it: the cursor check decides
    }
    const consumed = this.followedTo(change);
    if (consumed === undefined) {
      return this.reject("typedOver");
    }
    if (consumed === this.consumed) {
      return { kind: "unchanged" };
    }
    this.consumed = consumed;
    if (consumed >= this.insertText.length) {
      // what it was waits for accept() (Tab's command) or settle() (typed by hand)
      this.completed = true;
      this.resolved = true;
      return { kind: "completed" };
    }
    if (partialAccept && consumed > this.acceptedLength) {
      this.acceptedLength = consumed;
      return { kind: "partiallyAccepted", acceptedLength: consumed };
    }
    return { kind: "typedThrough" };
  }

  /** How much of insertText is in the document after a change that follows the suggestion, or undefined
   * when the change disagrees with it. Following: typing at the cursor, or replacing text already consumed
   * (up to the cursor) with that text and more of the suggestion. VS Code grows the item's range over the
   * characters typed through, and Tab (or the last word of a word-by-word accept) replaces that whole range
   * with the whole text. */
  private followedTo(change: Change): number | undefined {
    const start = change.offset - this.anchor;
    if (start < 0 || change.offset + change.length !== this.expectedCursor) {
      return undefined;
    }
    const replaced = this.insertText.slice(start, this.consumed);
    if (!change.text.startsWith(replaced) || !this.insertText.startsWith(change.text, start)) {
      return undefined;
    }
    return start + change.text.length;
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

  /** The cursor moved (after any change was applied). */
  onCursor(offset: number): Verdict {
    if (this.resolved || offset === this.expectedCursor) {
      return { kind: "unchanged" };
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
