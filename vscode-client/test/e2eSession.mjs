// What the end-to-end scripts share (e2e.mjs: a Python file; e2eNotebook.mjs: a notebook's cells): the config each
// reads, the JSON result each writes, code-server's workbench in headless Chromium (playwright-core), screenshots,
// the Tact status bar item, reading an editor's lines and ghost text, and showing and applying a predicted next edit.
//
// Every config has: url, toolsDir (folder whose node_modules holds playwright-core), chromium (binary), profile
// (fresh browser profile directory), screenshots, out, timeoutMs.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const GHOST = ".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text";
/** The text editor of the active editor group. */
export const ACTIVE_EDITOR = ".editor-group-container.active .monaco-editor";
/** In the hint the extension shows after a predicted next edit (vscode-client/src/nextEditHint.ts). */
export const NEXT_EDIT_HINT = "Tab to apply";

export class Session {
  constructor(configPath) {
    this.config = JSON.parse(readFileSync(configPath, "utf8"));
    this.result = { steps: [], screenshots: [] };
    this.started = Date.now();
    this.deadline = this.started + this.config.timeoutMs;
    mkdirSync(this.config.screenshots, { recursive: true });
  }

  step(name, extra = {}) {
    this.result.steps.push({ name, t: (Date.now() - this.started) / 1000, ...extra });
  }

  /** A wait's timeout: capMs, or less where the script's deadline is nearer (never under a second). */
  remaining(capMs) {
    return Math.max(1000, Math.min(capMs, this.deadline - Date.now()));
  }

  async shot(page, name) {
    const path = join(this.config.screenshots, name);
    await page.screenshot({ path });
    this.result.screenshots.push(path);
  }

  /** Runs body(page) on the workbench at config.url in a fresh browser; an error ends it with a screenshot. Writes
   * the result to config.out and exits, with 1 after an error. */
  async run(body) {
    const config = this.config;
    const { chromium } = createRequire(join(config.toolsDir, "package.json"))("playwright-core");
    let context;
    try {
      context = await chromium.launchPersistentContext(config.profile, {
        executablePath: config.chromium,
        headless: true,
        viewport: { width: 1280, height: 800 },
        args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync"],
      });
      const page = context.pages()[0] ?? (await context.newPage());
      page.setDefaultTimeout(20000);
      await page.goto(config.url, { waitUntil: "domcontentloaded", timeout: this.remaining(30000) });
      await page.waitForSelector(".monaco-workbench", { timeout: this.remaining(30000) });
      this.step("workbench");
      await body(page);
    } catch (error) {
      this.result.error = error instanceof Error ? `${error.message}\n${error.stack}` : String(error);
      try {
        const page = context?.pages()[0];
        if (page) {
          await this.shot(page, "99-failure.png");
        }
      } catch {
        // the browser is gone
      }
    } finally {
      this.result.elapsed_s = (Date.now() - this.started) / 1000;
      writeFileSync(config.out, JSON.stringify(this.result, null, 1));
      await context?.close().catch(() => {});
    }
    process.exit(this.result.error ? 1 : 0);
  }

  /** Opens a workspace file by name (Ctrl+P) and waits for its tab. */
  async openFile(page, name) {
    await page.waitForTimeout(500);
    await page.keyboard.press("Control+P");
    await page.waitForSelector(".quick-input-widget input", { state: "visible" });
    await page.keyboard.type(name, { delay: 20 });
    await page.waitForSelector(".quick-input-list .monaco-list-row", { state: "visible" });
    await page.keyboard.press("Enter");
    await page.waitForSelector(`.tab.active[aria-label*="${name}"]`, { timeout: this.remaining(15000) });
  }

  /** The text of the Tact status bar item. */
  async status(page) {
    return (await page.locator(".statusbar-item", { hasText: "Tact" }).first().innerText().catch(() => "")).trim();
  }

  /** Waits until the extension is up: its status bar item shows a running server with its model loaded (it lists
   * "shown"). Sets result.statusBefore. */
  async waitForServer(page) {
    const status = page.locator(".statusbar-item", { hasText: "Tact" }).filter({ hasText: "shown" });
    try {
      await status.first().waitFor({ state: "visible", timeout: this.remaining(60000) });
      this.result.statusBefore = (await status.first().innerText()).trim();
      this.step("server running", { status: this.result.statusBefore });
    } catch {
      this.result.statusBefore = await this.status(page);
      await this.shot(page, "00-no-server.png");
      throw new Error(`the Tact status bar item never showed a running server (it says: ${JSON.stringify(this.result.statusBefore)})`);
    }
  }

  /** Type, then wait for ghost text; if none comes, ask explicitly (Alt+\). */
  async typeUntilGhost(page, text, label) {
    await page.keyboard.type(text, { delay: 60 });
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        await page.waitForSelector(GHOST, { state: "visible", timeout: this.remaining(attempt === 0 ? 12000 : 8000) });
        const ghost = await ghostText(page);
        this.step(`${label}: ghost text`, { ghost, attempt });
        return ghost;
      } catch {
        this.step(`${label}: no ghost text yet`, { attempt });
        // an explicit request (Alt+\) is never skipped by the server's gates
        await page.keyboard.press("Alt+Backslash");
      }
    }
    throw new Error(`${label}: no ghost text appeared`);
  }

  async waitGhostGone(page) {
    await page.waitForSelector(GHOST, { state: "detached", timeout: this.remaining(5000) }).catch(() => {});
  }

  /** After an edit (a rename): waits for the predicted next edit's hint, screenshots it as shots.shown, dismisses a
   * ghost text that would take the Tab, applies the edit with Tab and screenshots the result as shots.applied.
   * editor: the editor edited (its lines are read after Tab). Sets result.nextEditHint, result.linesAfterNextEdit
   * and result.nextEditHintAfterTab; throws when no next edit is shown within timeoutMs. */
  async applyNextEdit(page, { editor = ACTIVE_EDITOR, timeoutMs = 20000, shots }) {
    const result = this.result;
    const until = Date.now() + this.remaining(timeoutMs);
    let hint = "";
    while (!hint && Date.now() < until) {
      await page.waitForTimeout(250);
      hint = await nextEditHint(page);
    }
    result.nextEditHint = hint;
    await this.shot(page, shots.shown);
    if (!hint) {
      throw new Error("no next edit was shown after the rename");
    }
    this.step("next edit shown", { hint });
    if (await ghostText(page)) {
      await page.keyboard.press("Escape"); // a ghost text would take the Tab: dismiss it first
      await this.waitGhostGone(page);
    }
    await page.keyboard.press("Tab");
    await page.waitForTimeout(800);
    result.linesAfterNextEdit = await editorLines(page, editor);
    result.nextEditHintAfterTab = await nextEditHint(page);
    await this.shot(page, shots.applied);
    this.step("next edit applied");
  }
}

/** The text of every rendered line of an editor (the index-th that editorSelector matches; the first by default),
 * top to bottom (Monaco renders spaces as U+00A0). */
export async function editorLines(page, editorSelector = ACTIVE_EDITOR, index = 0) {
  return page.evaluate(([selector, ghost, i]) => {
    const editor = document.querySelectorAll(selector)[i] ?? document.querySelector(".monaco-editor");
    const lines = [...(editor?.querySelectorAll(".view-lines .view-line") ?? [])];
    return lines
      .map((el) => {
        // ghost text is rendered inside the line: leave it out
        const copy = el.cloneNode(true);
        copy.querySelectorAll(ghost).forEach((g) => g.remove());
        return { top: parseFloat(el.style.top || "0"), text: (copy.textContent ?? "").replace(/\u00a0/g, " ") };
      })
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text);
  }, [editorSelector, GHOST.replace(/\.monaco-editor /g, ""), index]);
}

export async function ghostText(page) {
  return page.evaluate((selector) => [...document.querySelectorAll(selector)].map((el) => (el.textContent ?? "").replace(/\u00a0/g, " ")).join(""), GHOST);
}

/** Which of the editors editorsSelector matches (its index) shows the next-edit hint; -1 when none does. */
export async function nextEditHintEditor(page, editorsSelector) {
  return page.evaluate(([selector, hint]) => {
    return [...document.querySelectorAll(selector)].findIndex((editor) =>
      [...editor.querySelectorAll(".view-lines span")].some((el) => getComputedStyle(el, "::after").content?.includes(hint)));
  }, [editorsSelector, NEXT_EDIT_HINT]);
}

/** The text of the next-edit hint shown in any editor: the extension renders it as an `after` decoration (a CSS
 * ::after); "" when there is none. */
export async function nextEditHint(page) {
  return page.evaluate((hint) => {
    for (const el of document.querySelectorAll(".monaco-editor .view-lines span")) {
      const content = getComputedStyle(el, "::after").content;
      if (content && content.includes(hint)) {
        try {
          return JSON.parse(content);
        } catch {
          return content;
        }
      }
    }
    return "";
  }, NEXT_EDIT_HINT);
}
