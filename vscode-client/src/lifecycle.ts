// The lifecycle of one shown inline suggestion, with no dependency on VS Code (unit-tested on its own).
//
// With the proposed API `inlineCompletionsAdditions`, VS Code tells the provider when an item is shown,
// partially accepted and when its lifetime ends, and why. Without it the extension infers the end from what
// the user does: Escape (dismissed), a keystroke that disagrees with the suggestion (typedOver), the cursor
// leaving it (cursorMoved), or a newer suggestion (superseded). Accepting runs the item's command
// (tact.acceptSuggestion) in both cases.
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
    if (change.length === 0 && change.offset === this.expectedCursor) {
      const rest = this.insertText.slice(this.consumed);
      if (change.text.length > 0 && rest.startsWith(change.text)) {
        this.consumed += change.text.length;
        if (this.consumed >= this.insertText.length) {
          this.resolved = true;
          return { kind: "completed" };
        }
        if (partialAccept && this.consumed > this.acceptedLength) {
          this.acceptedLength = this.consumed;
          return { kind: "partiallyAccepted", acceptedLength: this.consumed };
        }
        return { kind: "typedThrough" };
      }
    }
    return this.reject("typedOver");
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
