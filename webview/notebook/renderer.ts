/**
 * The notebook renderer for Sift outputs (package.json,
 * contributes.notebookRenderer): an ES module the editor loads into the
 * notebook's output webview, which calls `activate` once and then
 * `renderOutputItem` for every run or compare output. Each output draws into
 * its own shadow root with the panels' stylesheets adopted, so nothing leaks
 * in or out of the notebook's page.
 *
 * Messages to and from the host go through the renderer messaging channel
 * (src/protocol/notebook.ts); every host message is validated before use.
 */
import uplotCss from 'uplot/dist/uPlot.min.css';
import baseCss from '../shared/base.css';
import dashboardCss from '../dashboard/dashboard.css';
import notebookCss from './notebook.css';
import { onThemeChange } from '../shared/theme';
import { compareOutputMime, parseCompareOutput, parseNotebookHostMessage, parseRunOutput, runOutputMime, type NotebookRendererMessage } from '../../src/protocol/notebook';
import type { ActivationFunction, OutputItem } from './api';
import { CompareOutputView, RunOutputView, type OutputChannel, type OutputView } from './views';

let sheet: CSSStyleSheet | undefined;

/** One constructed stylesheet, adopted by every output's shadow root (no <style> element, no inline style). */
function styles(): CSSStyleSheet {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync([uplotCss, baseCss, dashboardCss, notebookCss].join('\n'));
  }
  return sheet;
}

function shadowOf(element: HTMLElement): ShadowRoot {
  const root = element.shadowRoot ?? element.attachShadow({ mode: 'open' });
  root.adoptedStyleSheets = [styles()];
  return root;
}

/** An output the saved data of which cannot be read: said in the output, not thrown. */
function showProblem(element: HTMLElement, problem: string): void {
  const root = shadowOf(element);
  const box = document.createElement('div');
  box.className = 'notice error';
  box.textContent = `Sift cannot show this output: ${problem}`;
  root.replaceChildren(box);
}

export const activate: ActivationFunction = (context) => {
  const views = new Map<string, { view: OutputView; element: HTMLElement }>();
  const post = context.postMessage?.bind(context);
  const channel: OutputChannel = post ? { post: (message: NotebookRendererMessage) => post(message) } : {};

  context.onDidReceiveMessage?.((raw) => {
    const parsed = parseNotebookHostMessage(raw);
    if (!parsed.ok) {
      console.warn(`Sift notebook renderer ignored a message: ${parsed.problem}`);
      return;
    }
    views.get(parsed.message.payload.key)?.view.receive(parsed.message);
  });
  onThemeChange(() => {
    for (const { view } of views.values()) view.restyle();
  });

  const dispose = (id: string): void => {
    views.get(id)?.view.dispose();
    views.delete(id);
  };

  return {
    renderOutputItem(item: OutputItem, element: HTMLElement) {
      let data: unknown;
      try {
        data = item.json();
      } catch (error) {
        dispose(item.id);
        showProblem(element, `its data is not JSON (${(error as Error).message}).`);
        return;
      }
      const current = views.get(item.id);
      if (item.mime === runOutputMime) {
        const parsed = parseRunOutput(data);
        if (!parsed.ok) {
          dispose(item.id);
          return showProblem(element, parsed.problem);
        }
        // Replaced data of the same output (the run moved on): update in place, keep the charts.
        if (current?.element === element && current.view instanceof RunOutputView && current.view.dir === parsed.message.dir) return current.view.update(parsed.message);
        dispose(item.id);
        const view = new RunOutputView(item.id, shadowOf(element), channel, parsed.message);
        views.set(item.id, { view, element });
        view.watch();
        return;
      }
      if (item.mime === compareOutputMime) {
        const parsed = parseCompareOutput(data);
        if (!parsed.ok) {
          dispose(item.id);
          return showProblem(element, parsed.problem);
        }
        dispose(item.id);
        const view = new CompareOutputView(item.id, shadowOf(element), channel, parsed.message);
        views.set(item.id, { view, element });
        view.watch();
        return;
      }
      showProblem(element, `unknown output type ${item.mime}.`);
    },
    disposeOutputItem(id?: string) {
      if (id !== undefined) dispose(id);
      else for (const key of [...views.keys()]) dispose(key);
    },
  };
};
