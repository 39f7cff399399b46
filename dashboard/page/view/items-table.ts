import { durationMs, type ItemRow, timeToFirstTokenMs } from '../items-store.js';
import { formatClock, formatCost, formatCount, formatDuration, NONE, shortModel } from '../format.js';
import { setText } from './dom.js';

const COLUMNS = 9;

/**
 * The items table: one `<tr data-item-id data-status>` per row, reused across renders (keyed by
 * item id) so a live update changes only the cells whose text changed.
 */
export class ItemsTable {
  readonly #body: HTMLTableSectionElement;
  readonly #rows = new Map<string, HTMLTableRowElement>();
  #selected: string | undefined;

  constructor(body: HTMLTableSectionElement, onSelect: (itemId: string) => void) {
    this.#body = body;
    const select = (event: Event) => {
      const row = event.target instanceof Element ? event.target.closest('tr[data-item-id]') : null;
      const itemId = row instanceof HTMLElement ? row.dataset.itemId : undefined;
      if (itemId) onSelect(itemId);
    };
    body.addEventListener('click', select);
    body.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        select(event);
      }
    });
  }

  /** Shows `rows` in this order; `now` for the running durations. */
  render(rows: readonly ItemRow[], selected: string | undefined, now: number): void {
    this.#selected = selected;
    const keep = new Set(rows.map((row) => row.itemId));
    for (const [itemId, tr] of this.#rows) {
      if (!keep.has(itemId)) {
        tr.remove();
        this.#rows.delete(itemId);
      }
    }
    let previous: HTMLTableRowElement | undefined;
    for (const row of rows) {
      const tr = this.#rows.get(row.itemId) ?? this.#create(row.itemId);
      this.#fill(tr, row, now);
      const expected = previous ? previous.nextElementSibling : this.#body.firstElementChild;
      if (expected !== tr) {
        if (previous) previous.after(tr);
        else this.#body.prepend(tr);
      }
      previous = tr;
    }
  }

  #create(itemId: string): HTMLTableRowElement {
    const tr = this.#body.ownerDocument.createElement('tr');
    tr.dataset.itemId = itemId;
    tr.tabIndex = 0;
    for (let i = 0; i < COLUMNS; i++) tr.append(this.#body.ownerDocument.createElement('td'));
    const status = this.#body.ownerDocument.createElement('span');
    status.className = 'badge';
    tr.cells[1]?.append(status);
    for (const i of [3, 4, 5, 6, 7, 8]) tr.cells[i]?.classList.add('num');
    tr.cells[0]?.classList.add('item-id');
    tr.cells[2]?.classList.add('model');
    this.#rows.set(itemId, tr);
    return tr;
  }

  #fill(tr: HTMLTableRowElement, row: ItemRow, now: number): void {
    const cells = tr.cells;
    if (tr.dataset.status !== row.status) tr.dataset.status = row.status;
    const selected = row.itemId === this.#selected;
    if (tr.getAttribute('aria-selected') !== String(selected))
      tr.setAttribute('aria-selected', String(selected));
    const [id, status, model, input, output, ttft, duration, cost, received] = Array.from(cells);
    if (id) {
      setText(id, row.itemId);
      id.title = row.itemId;
    }
    const badge = status?.firstElementChild;
    if (badge instanceof HTMLElement) {
      setText(badge, row.attempt > 1 ? `${row.status} · #${row.attempt}` : row.status);
      badge.dataset.status = row.status;
      badge.title = row.error ? `${row.error.code}: ${row.error.message}` : '';
    }
    if (model) {
      setText(model, shortModel(row.modelId));
      model.title = row.modelId ?? '';
    }
    if (input) setText(input, formatCount(row.usage?.inputTokens));
    if (output) setText(output, formatCount(row.usage?.outputTokens));
    if (ttft) setText(ttft, formatDuration(timeToFirstTokenMs(row)));
    if (duration) setText(duration, formatDuration(durationMs(row, now)));
    if (cost) setText(cost, row.costUsd === undefined ? NONE : formatCost(row.costUsd));
    if (received) setText(received, formatClock(row.createdAt ?? row.seenAt));
  }
}
