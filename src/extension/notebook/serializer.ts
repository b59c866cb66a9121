/**
 * Opens and saves `.siftnb` files for the notebook editor. The file format is
 * src/notebook/format.ts and the mapping to the editor's model
 * src/notebook/editorData.ts; this only wraps that mapping in the editor's
 * classes.
 */
import * as vscode from 'vscode';
import { toEditorNotebook, fromEditorNotebook, type EditorCell, type EditorOutput } from '../../notebook/editorData';
import { parseNotebook, serializeNotebook } from '../../notebook/format';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class SiftNotebookSerializer implements vscode.NotebookSerializer {
  deserializeNotebook(content: Uint8Array): vscode.NotebookData {
    const notebook = toEditorNotebook(parseNotebook(decoder.decode(content), 'This .siftnb file'));
    const data = new vscode.NotebookData(
      notebook.cells.map((cell) => {
        const kind = cell.kind === 'markdown' ? vscode.NotebookCellKind.Markup : vscode.NotebookCellKind.Code;
        const data = new vscode.NotebookCellData(kind, cell.value, cell.languageId);
        data.outputs = cell.outputs.map((output) => new vscode.NotebookCellOutput(output.items.map((item) => new vscode.NotebookCellOutputItem(item.data, item.mime)), output.metadata));
        data.metadata = cell.metadata;
        if (cell.executionSummary) data.executionSummary = cell.executionSummary;
        return data;
      }),
    );
    data.metadata = notebook.metadata;
    return data;
  }

  serializeNotebook(data: vscode.NotebookData): Uint8Array {
    const cells = data.cells.map(
      (cell): EditorCell => ({
        kind: cell.kind === vscode.NotebookCellKind.Markup ? 'markdown' : 'code',
        value: cell.value,
        languageId: cell.languageId,
        outputs: (cell.outputs ?? []).map((output): EditorOutput => ({ items: output.items.map((item) => ({ mime: item.mime, data: item.data })), ...(output.metadata ? { metadata: output.metadata } : {}) })),
        metadata: cell.metadata ?? {},
        ...(cell.executionSummary ? { executionSummary: { executionOrder: cell.executionSummary.executionOrder, success: cell.executionSummary.success, timing: cell.executionSummary.timing } } : {}),
      }),
    );
    return encoder.encode(serializeNotebook(fromEditorNotebook({ cells, metadata: data.metadata ?? {} })));
  }
}
