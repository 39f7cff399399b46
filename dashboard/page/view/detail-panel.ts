import type { ItemChange, ItemView } from '../../../shared/client/index.js';
import type { ErrorInfo } from '../../../shared/contracts/chunk-record.js';
import type { ItemStatus } from '../../../shared/contracts/stored-item.js';
import { formatCost, formatCount, formatDuration, NONE, shortModel } from '../format.js';
import { durationMs, type ItemRow, isTerminal, timeToFirstTokenMs } from '../items-store.js';
import { byId, setText } from './dom.js';

/** How close to the bottom (px) counts as following the text: new text then scrolls into view. */
const FOLLOW_SLACK_PX = 24;

/**
 * The selected item: its facts, its text as it streams, notices for a reset, a failure or a
 * cancel, and the cancel button. The text is one DOM text node that deltas are appended to; the
 * whole text is rewritten only when the client library replaces it.
 */
export class DetailPanel {
  readonly #doc: Document;
  readonly #panel: HTMLElement;
  readonly #body: HTMLElement;
  readonly #empty: HTMLElement;
  readonly #id: HTMLElement;
  readonly #status: HTMLElement;
  readonly #facts: HTMLElement;
  readonly #notices: HTMLElement;
  readonly #pre: HTMLPreElement;
  readonly #text: Text;
  readonly #cancel: HTMLButtonElement;
  #itemId: string | undefined;
  #attempt = 0;
  #itemStatus: ItemStatus | undefined;
  #error: ErrorInfo | undefined;
  /** An attempt after the first began while this item was on screen. */
  #resetSeen = false;
  #cancelling = false;
  #cancelError: string | undefined;

  constructor(doc: Document, onCancel: (itemId: string) => void) {
    this.#doc = doc;
    this.#panel = byId(doc, 'detail', HTMLElement);
    this.#body = byId(doc, 'detail-body', HTMLElement);
    this.#empty = byId(doc, 'detail-empty', HTMLElement);
    this.#id = byId(doc, 'detail-id', HTMLElement);
    this.#status = byId(doc, 'detail-status', HTMLElement);
    this.#facts = byId(doc, 'detail-facts', HTMLElement);
    this.#notices = byId(doc, 'detail-notices', HTMLElement);
    this.#pre = byId(doc, 'detail-text', HTMLPreElement);
    this.#cancel = byId(doc, 'cancel', HTMLButtonElement);
    this.#text = doc.createTextNode('');
    this.#pre.append(this.#text);
    this.#cancel.addEventListener('click', () => {
      if (!this.#itemId || this.#cancelling) return;
      this.#cancelling = true;
      this.#cancelError = undefined;
      this.#renderState();
      onCancel(this.#itemId);
    });
  }

  get itemId(): string | undefined {
    return this.#itemId;
  }

  /** A cancel was asked for and the item has not ended yet. */
  get cancelling(): boolean {
    return this.#cancelling;
  }

  /** Shows another item: its view now if the client holds one, else an empty text until its snapshot. */
  show(itemId: string, view: ItemView | undefined, row: ItemRow | undefined, now: number): void {
    this.#itemId = itemId;
    this.#resetSeen = false;
    this.#cancelling = false;
    this.#cancelError = undefined;
    this.#empty.hidden = true;
    this.#body.hidden = false;
    setText(this.#id, itemId);
    this.#attempt = view?.attempt ?? row?.attempt ?? 0;
    this.#itemStatus = view?.status ?? row?.status;
    this.#error = view?.error ?? row?.error;
    this.#replaceText(view?.text ?? '');
    this.#pre.scrollTop = 0;
    this.#renderState();
    if (row) this.renderFacts(row, now);
  }

  /** Applies a change of the selected item from the client library. */
  apply(change: ItemChange): void {
    const view = change.view;
    if (view.itemId !== this.#itemId) return;
    if (change.kind === 'reset' || view.attempt > this.#attempt) {
      if (this.#attempt > 0 && view.attempt > this.#attempt) this.#resetSeen = true;
      this.#attempt = view.attempt;
      this.#replaceText(view.text);
    }
    if (change.kind === 'text') {
      const appendable = !change.replaced && this.#text.length + change.appended.length === view.text.length;
      if (appendable) this.#appendText(change.appended);
      else this.#replaceText(view.text);
    }
    this.#itemStatus = view.status;
    this.#error = view.error;
    if (isTerminal(view.status)) this.#cancelling = false;
    this.#renderState();
  }

  /** A cancel request was refused by the server. */
  cancelFailed(message: string): void {
    this.#cancelling = false;
    this.#cancelError = message;
    this.#renderState();
  }

  /** The facts line: model, attempt, tokens, timings, cost. */
  renderFacts(row: ItemRow, now: number): void {
    if (row.itemId !== this.#itemId) return;
    const facts: Array<[string, string]> = [
      ['Model', shortModel(row.modelId)],
      ['Attempt', row.attempt > 0 ? String(row.attempt) : NONE],
      ['Tokens in / out', `${formatCount(row.usage?.inputTokens)} / ${formatCount(row.usage?.outputTokens)}`],
      ['TTFT', formatDuration(timeToFirstTokenMs(row))],
      ['Duration', formatDuration(durationMs(row, now))],
      ['Cost', formatCost(row.costUsd)],
    ];
    const key = JSON.stringify(facts);
    this.#facts.title = row.modelId ?? '';
    if (this.#facts.dataset.key === key) return;
    this.#facts.dataset.key = key;
    this.#facts.replaceChildren(
      ...facts.map(([name, value]) => {
        const wrap = this.#doc.createElement('div');
        const dt = this.#doc.createElement('dt');
        const dd = this.#doc.createElement('dd');
        dt.textContent = name;
        dd.textContent = value;
        wrap.append(dt, dd);
        return wrap;
      }),
    );
  }

  #following(): boolean {
    const pre = this.#pre;
    return pre.scrollHeight - pre.scrollTop - pre.clientHeight <= FOLLOW_SLACK_PX;
  }

  #appendText(text: string): void {
    if (!text) return;
    const follow = this.#following();
    this.#text.appendData(text);
    if (follow) this.#pre.scrollTop = this.#pre.scrollHeight;
  }

  #replaceText(text: string): void {
    if (this.#text.data !== text) this.#text.data = text;
  }

  #renderState(): void {
    const status = this.#itemStatus ?? 'queued';
    this.#panel.dataset.status = status;
    setText(this.#status, status);
    this.#status.dataset.status = status;
    const running = !isTerminal(status);
    this.#cancel.hidden = !running;
    this.#cancel.disabled = this.#cancelling;
    setText(this.#cancel, this.#cancelling ? 'Cancelling…' : 'Cancel generation');
    this.#renderNotices(status);
  }

  #renderNotices(status: ItemStatus): void {
    const notices: Array<{ kind: string; title: string; body: string }> = [];
    if (this.#attempt > 1) {
      notices.push({
        kind: 'reset',
        title: this.#resetSeen ? `Reset — attempt ${this.#attempt} began` : `Attempt ${this.#attempt}`,
        body: 'An earlier attempt failed mid-stream and was retried: its text was discarded and the text below restarted from the beginning.',
      });
    }
    if (status === 'failed') {
      const error = this.#error;
      if (error?.code === 'cancelled') {
        notices.push({
          kind: 'cancelled',
          title: 'Cancelled',
          body: 'The generation was stopped on request. The text below is what the model produced until then.',
        });
      } else {
        notices.push({
          kind: 'failed',
          title: `Failed${error ? ` — ${error.code}` : ''}`,
          body: error?.message || 'The generation failed.',
        });
      }
    }
    if (this.#cancelError) {
      notices.push({ kind: 'failed', title: 'Cancel refused', body: this.#cancelError });
    }
    const key = JSON.stringify(notices);
    if (this.#notices.dataset.key === key) return;
    this.#notices.dataset.key = key;
    this.#notices.replaceChildren(
      ...notices.map((notice) => {
        const box = this.#doc.createElement('div');
        box.className = 'notice';
        box.dataset.kind = notice.kind;
        const title = this.#doc.createElement('strong');
        title.textContent = notice.title;
        const body = this.#doc.createElement('span');
        body.textContent = notice.body;
        box.append(title, body);
        return box;
      }),
    );
  }
}
