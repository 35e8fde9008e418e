// The status bar item: on/off, model and policy, recent median latency, suggestions shown and hidden.
import * as vscode from "vscode";
import { median, type SessionCounters } from "./inline";
import type { ServerStatus } from "./protocol";
import { hiddenCount, tooltipMarkdown, type ServerState } from "./statusText";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: ServerState = "starting";
  private problem = "";
  private status: ServerStatus | undefined;

  constructor(
    private readonly counters: SessionCounters,
    private readonly enabled: () => boolean,
  ) {
    this.item = vscode.window.createStatusBarItem("tact.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "Tact";
    this.item.command = "tact.showMenu";
    this.render();
    this.item.show();
  }

  setState(state: ServerState, problem = ""): void {
    this.state = state;
    this.problem = problem;
    this.render();
  }

  setStatus(status: ServerStatus | undefined): void {
    this.status = status;
    this.render();
  }

  render(): void {
    const s = this.status;
    const on = this.enabled();
    const p50 = median(this.counters.latenciesMs);
    const hidden = hiddenCount(s);
    const model = s?.model || (s?.modelDir ? s.modelDir.split(/[\\/]/).filter(Boolean).pop() : "") || "";
    const policy = s?.policy ?? "";
    let icon = "$(sparkle)";
    let text = "Tact";
    this.item.backgroundColor = undefined;
    if (this.state === "starting") {
      icon = "$(sync~spin)";
    } else if (this.state === "failed" || this.state === "stopped") {
      icon = "$(error)";
      this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
    } else if (s?.degraded) {
      icon = "$(warning)";
      text = "Tact: no model";
      this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.warningBackground");
    } else if (s?.loading) {
      icon = "$(sync~spin)";
      text = "Tact: loading model";
    }
    if (!on) {
      icon = "$(circle-slash)";
      text = "Tact off";
    } else if (this.state === "running" && s && !s.degraded && !s.loading) {
      const parts = [[model, policy].filter(Boolean).join(" · ")];
      parts.push(p50 === undefined ? "– ms" : `${Math.round(p50)} ms`);
      parts.push(`${this.counters.shown} shown`);
      parts.push(`${hidden ?? "–"} hidden`);
      text = `Tact ${parts.filter(Boolean).join(" · ")}`;
    }
    this.item.text = `${icon} ${text}`;
    this.item.tooltip = this.tooltip(on, model, policy, p50, hidden);
    this.item.accessibilityInformation = { label: this.item.text.replace(/\$\([^)]*\)\s*/g, "") };
  }

  private tooltip(on: boolean, model: string, policy: string, p50: number | undefined, hidden: number | undefined): vscode.MarkdownString {
    const facts = { state: this.state, problem: this.problem, status: this.status, on, model, policy, p50, hidden, counters: this.counters };
    const md = new vscode.MarkdownString(tooltipMarkdown(facts), true);
    md.isTrusted = { enabledCommands: ["tact.toggle", "tact.openReport", "tact.showOutput", "tact.restartServer"] };
    return md;
  }

  dispose(): void {
    this.item.dispose();
  }
}
