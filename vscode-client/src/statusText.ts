// The status bar tooltip's text, with no dependency on VS Code (unit-tested on its own).
import type { SessionCounters } from "./inline";
import { markdownCell, markdownText } from "./markdown";
import type { ServerStatus } from "./protocol";

export type ServerState = "starting" | "running" | "stopped" | "failed";

/** What the tooltip shows. */
export interface TooltipFacts {
  state: ServerState;
  /** Why the server failed or stopped, for the user. */
  problem: string;
  status: ServerStatus | undefined;
  on: boolean;
  model: string;
  policy: string;
  p50: number | undefined;
  hidden: number | undefined;
  counters: SessionCounters;
}

/** The tooltip as markdown: the server's state and reasons, a table of the session's numbers, command links. What
 * comes from the server or an error (versions, reasons, paths) is escaped, its code spans kept (markdownText). */
export function tooltipMarkdown(f: TooltipFacts): string {
  const s = f.status;
  let md = `**Tact** ${s?.version ? `${markdownText(s.version)} ` : ""}— suggestions ${f.on ? "on" : "off"}\n\n`;
  if (f.state === "failed" || f.state === "stopped") {
    md += `Server ${f.state}${f.problem ? `: ${markdownText(f.problem)}` : ""}\n\n`;
  } else if (f.state === "starting") {
    md += "Server starting…\n\n";
  }
  if (s?.degraded) {
    md += `No suggestions: ${markdownText(s.reason || "no model")}\n\n`;
  }
  const rows: [string, string][] = [
    ["model", f.model ? `${f.model}${s?.modelDir ? ` (${s.modelDir})` : ""}` : "–"],
    ["decoding policy", f.policy || "–"],
    ["median latency (last 20)", f.p50 === undefined ? "–" : `${Math.round(f.p50)} ms`],
    ["shown this session", String(f.counters.shown)],
    ["accepted / rejected", `${f.counters.accepted} / ${f.counters.rejected}`],
    ["hidden by the acceptance model", f.hidden === undefined ? "–" : String(f.hidden)],
    ["telemetry database", s?.database ? String(s.database) : s?.telemetryReason ? String(s.telemetryReason) : "–"],
  ];
  md += "| | |\n|---|---|\n";
  for (const [k, v] of rows) {
    md += `| ${k} | ${markdownCell(v)} |\n`;
  }
  md +=
    `\n[${f.on ? "Turn off" : "Turn on"}](command:tact.toggle) · [Open latest report](command:tact.openReport) · ` +
    "[Output](command:tact.showOutput) · [Restart](command:tact.restartServer)";
  return md;
}

/** Suggestions the acceptance model hid this session, where the server reports it. */
export function hiddenCount(s: ServerStatus | undefined): number | undefined {
  const candidates = [s?.session?.hidden, s?.acceptanceGate?.hidden];
  return candidates.find((v): v is number => typeof v === "number");
}
