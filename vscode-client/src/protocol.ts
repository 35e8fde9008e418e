// Custom LSP names, the same strings as the server's lsp_server/protocol.py (one name per concept).

export const COMMAND_ACCEPT_SUGGESTION = "tact.acceptSuggestion";
export const COMMAND_ACCEPT_NEXT_EDIT = "tact.acceptNextEdit";

export const DID_SHOW_COMPLETION = "tact/didShowCompletion"; // {id}
export const DID_PARTIALLY_ACCEPT_COMPLETION = "tact/didPartiallyAcceptCompletion"; // {id, acceptedLength}
export const DID_REJECT_COMPLETION = "tact/didRejectCompletion"; // {id, reason}
export const NEXT_EDIT = "tact/nextEdit"; // {textDocument {uri, version}, position, otherCells?} -> {edits: [{id, range, newText, textDocument?}]}
export const DID_SHOW_NEXT_EDIT = "tact/didShowNextEdit"; // {id}
export const DID_REJECT_NEXT_EDIT = "tact/didRejectNextEdit"; // {id, reason}
export const STATUS = "tact/status"; // -> {model, policy, degraded, reason, ...}

/** Why a shown suggestion ended without being accepted (lsp_server.protocol.RejectReason). */
/** The server itself rejects a suggestion still open when its document closes ("documentClosed"). */
export type RejectReason = "dismissed" | "typedOver" | "superseded" | "cursorMoved" | "ignored" | "documentClosed";

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

export interface NextEditParams {
  textDocument: { uri: string; version: number };
  position: LspPosition;
  /** From a notebook cell: the edit may be in another cell of the notebook (then it names its cell). */
  otherCells?: boolean;
}

export interface NextEdit {
  id: string;
  range: LspRange;
  newText: string;
  /** The document the edit is in, at that version, where it is not the requested one (another notebook cell). */
  textDocument?: { uri: string; version: number };
}

export interface NextEditResult {
  edits: NextEdit[];
}

/** What `tact/status` answers; every field optional, the server may add more. */
export interface ServerStatus {
  ready?: boolean;
  loading?: boolean;
  degraded?: boolean;
  reason?: string;
  model?: string;
  modelDir?: string;
  loadMs?: number;
  /** Prompt and suggestion fit this many tokens: the model's trained context. */
  contextTokens?: number;
  policy?: string;
  enabled?: boolean;
  sessionId?: string;
  database?: string;
  /** Why nothing is recorded (telemetry off, or its database unusable); absent or null while recording. */
  telemetryReason?: string | null;
  version?: string;
  acceptanceGate?: { active?: boolean; enabled?: boolean; hidden?: number; reason?: string };
  session?: { shown?: number; hidden?: number };
  [key: string]: unknown;
}
