// The documents the extension serves: its language client, inline suggestions and next edits share this selector.
import type * as vscode from "vscode";

export const SELECTOR: vscode.DocumentSelector = [
  { language: "python", scheme: "file" },
  { language: "python", scheme: "untitled" },
  // a notebook's Python code cells: each is a document of its own under a cell URI (the language client syncs
  // them through notebookDocument/* when the server declares notebookDocumentSync)
  { language: "python", scheme: "vscode-notebook-cell" },
];
